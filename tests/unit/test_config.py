from pathlib import Path

import pytest

from tracker.config import (
    EVERYWHERE,
    MIN_TOKEN_LENGTH,
    Exposed,
    Settings,
    ShortToken,
    refuse_short_tokens,
)

INGEST, READ = "ingest-token-16ch", "read-token-16char"


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert settings.data_dir == Path(".tracker")
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.ingest_token is None
    assert settings.body_timeout == 10.0


def test_environment_then_flags() -> None:
    settings = Settings.from_env(
        {
            "TRACKER_PORT": "9000",
            "TRACKER_INGEST_TOKEN": "s3-ingest-token-1",
            "TRACKER_DB_TIMEOUT": "2.5",
            "TRACKER_READ_TOKEN": "",
            "TRACKER_BODY_TIMEOUT": "2.5",
        }
    )
    assert settings.body_timeout == 2.5
    assert (settings.port, settings.ingest_token, settings.db_timeout, settings.read_token) == (
        9000,
        "s3-ingest-token-1",
        2.5,
        None,
    )
    assert settings.with_overrides(port=9100, host=None).port == 9100


def test_a_bad_value_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="TRACKER_PORT='http' is not a valid int"):
        Settings.from_env({"TRACKER_PORT": "http"})


@pytest.mark.parametrize(
    ("env", "listens"),
    [
        ({}, "127.0.0.1"),  # no token: this machine only
        ({"TRACKER_INGEST_TOKEN": INGEST}, "127.0.0.1"),
        ({"TRACKER_READ_TOKEN": READ}, "127.0.0.1"),
        ({"TRACKER_INGEST_TOKEN": INGEST, "TRACKER_READ_TOKEN": READ}, EVERYWHERE),
        ({"TRACKER_HOST": "127.0.0.1"}, "127.0.0.1"),
        ({"TRACKER_HOST": "::1"}, "::1"),
        ({"TRACKER_HOST": "localhost"}, "localhost"),
        ({"TRACKER_HOST": "127.8.9.10"}, "127.8.9.10"),
        ({"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "1"}, EVERYWHERE),
        (
            {
                "TRACKER_HOST": "10.1.2.3",
                "TRACKER_INGEST_TOKEN": INGEST,
                "TRACKER_READ_TOKEN": READ,
            },
            "10.1.2.3",
        ),
    ],
)
def test_closed_by_default(env: dict[str, str], listens: str) -> None:
    assert Settings.from_env(env).listen_address() == listens


@pytest.mark.parametrize(
    "env",
    [
        {"TRACKER_HOST": EVERYWHERE},
        {"TRACKER_HOST": "::"},
        {"TRACKER_HOST": "10.1.2.3", "TRACKER_INGEST_TOKEN": INGEST},
        {"TRACKER_HOST": "tracker.example.com", "TRACKER_READ_TOKEN": READ},
        {"TRACKER_HOST": EVERYWHERE, "TRACKER_INSECURE_OPEN": "0"},
    ],
)
def test_listening_beyond_loopback_without_both_tokens_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(Exposed, match=r"refusing to listen on .* unset: anyone who can reach it"):
        Settings.from_env(env).listen_address()


@pytest.mark.parametrize("name", ["ingest_token", "read_token", "metrics_token"])
def test_a_token_shorter_than_16_characters_is_refused(name: str) -> None:
    assert MIN_TOKEN_LENGTH == 16
    refuse_short_tokens(Settings().with_overrides(**{name: "x" * 16}))  # 16 is enough
    refuse_short_tokens(Settings())  # unset is not short (closed-by-default rules it)
    with pytest.raises(ShortToken, match=rf"^TRACKER_{name.upper()} is 15 characters long; every "):
        refuse_short_tokens(Settings().with_overrides(**{name: "x" * 15}))


def test_the_proxy_is_trusted_only_when_asked() -> None:
    assert Settings.from_env({}).trust_proxy is False
    assert Settings.from_env({"TRACKER_TRUST_PROXY": "1"}).trust_proxy is True
    assert Settings.from_env({"TRACKER_TRUST_PROXY": "0"}).trust_proxy is False
