"""Log lines never carry a token and never run on (tracker/logs.py), and the connection cap is
set under the open-file limit (tracker/http/connections.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tracker.config import Settings
from tracker.http.connections import SPARE_FILES, connection_cap
from tracker.http.malformed import SNIPPET, snippet
from tracker.logs import MAX_LINE, MaskSecrets, capped, mask, printable, secrets_of

TOKEN = "s3cr3t-Ingest/Token+1"
SETTINGS = Settings(ingest_token=TOKEN, read_token="read-token-2", metrics_token="metrics-3")


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose handler masks, as `tracker serve` installs it on the root's."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskSecrets(secrets_of(SETTINGS)))
    logger = logging.getLogger("test.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    child = logging.getLogger("test.masking.child")  # a record from below reaches the handler
    yield child, out
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [
        f"GET /v1/events?token={TOKEN} HTTP/1.1",
        f"b'G\\x01T /v1/events?limit=1&token={TOKEN}&x=1 HTTP/1.1'",
        f"Authorization: Bearer {TOKEN}",
        f"b'Authorization: Bearer \\x01{TOKEN}\\r\\nHost: x'",
        f"bearer {TOKEN}",
        f"a header X-{TOKEN}: 1",
        "GET /?token=s3cr3t-Ingest%2FToken%2B1",  # percent-encoded
        "read-token-2 and metrics-3",
    ],
)
def test_every_form_of_a_token_is_masked(text: str) -> None:
    masked = mask(text, secrets_of(SETTINGS))
    for secret in (TOKEN, "s3cr3t", "read-token-2", "metrics-3", "Token%2B1"):
        assert secret not in masked, masked
    assert "***" in masked


def test_an_unconfigured_token_in_a_query_or_header_is_masked_too() -> None:
    assert mask("GET /v1/devices?x=1&token=guess-123&y=2") == "GET /v1/devices?x=1&token=***&y=2"
    assert mask("Authorization: Basic dXNlcjpwYXNz") == "Authorization: ***"
    assert mask("postgresql://tracker:hunter2@db:5432/t") == "postgresql://tracker:***@db:5432/t"


def test_a_line_is_escaped_and_capped(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    logger.info("request %s", "a\r\nFORGED 200 OK\x00" + "x" * 5000)
    [line] = out.getvalue().splitlines()  # the CR LF did not forge a second line
    assert "\\r\\nFORGED 200 OK\\x00" in line
    escaped = "request a\\r\\nFORGED 200 OK\\x00" + "x" * 5000
    assert line.endswith(f"…({len(escaped) - MAX_LINE} more)")
    assert len(line) < MAX_LINE + 100


def test_a_traceback_is_masked_line_by_line(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = log
    try:
        int(f"bad url /v1/events?token={TOKEN}")
    except ValueError:
        logger.exception("failed with Bearer %s", TOKEN)
    text = out.getvalue()
    assert TOKEN not in text
    assert "Traceback (most recent call last)" in text
    assert "token=***" in text


def test_printable_and_capped_leave_ordinary_text_alone() -> None:
    assert printable("device ü-42 ok") == "device ü-42 ok"
    assert printable("\x1b[31m") == "\\x1b[31m"
    assert capped("a" * 10, 4) == "aaaa…(6 more)"


def test_a_malformed_request_is_repeated_as_a_short_masked_snippet() -> None:
    reason = f"Invalid method encountered:\n\n  b'G\\x01T /v1/events?token={TOKEN}{'a' * 9000}'"
    said = snippet(reason)
    assert TOKEN not in said
    assert said.startswith("Invalid method encountered: b'G\\x01T /v1/events?token=***")
    assert len(said) <= SNIPPET + len("…(99999 more)")


def test_the_connection_cap_fits_under_the_open_file_limit() -> None:
    assert connection_cap(1000, file_limit=20_000, reserved=15) == 1000
    assert connection_cap(1000, file_limit=1024, reserved=15) == 1024 - 15 - SPARE_FILES
    assert connection_cap(1000, file_limit=100, reserved=15) == 1  # still serves, one at a time


def test_the_iotda_secret_key_is_masked_wherever_it_appears() -> None:
    secret = "iotda-secret-key/with+odd=chars"
    encoded = quote(secret, safe="")
    masked = mask(f"signing with {secret} and {encoded}", secrets_of(Settings(iotda_sk=secret)))
    assert "iotda-secret-key" not in masked
