"""Log lines that never carry a secret and never run on for ever.

Anything a client sends can reach the log: aiohttp quotes the request line or header it could
not parse, and a token travels in `?token=` or `Authorization`. `tracker serve` installs
`MaskSecrets` on every root handler, so each line (and its traceback) is masked on its way out,
whoever logged it: the configured token values, any `token=` value, any `Authorization:` or
`Bearer` value, the password in a URL. Characters that are not printable are escaped (a line
cannot forge another), and a line is cut at MAX_LINE characters.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote

from tracker.config import Settings

MAX_LINE = 1000
MASK = "***"
_PATTERNS = (
    # ?token=..., &token=..., access_token=...: up to the next parameter, space or quote. A
    # backslash does not end it: in quoted bytes, b'...token=ab\x01cd' is one value.
    re.compile(r"(?i)(token=)[^&\s'\"#]+"),
    # Authorization: <anything>, to the end of the header (also where quoted as "\r\n").
    re.compile(r"(?i)(authorization\s*[:=]\s*)(?:(?!\\r|\\n)[^\r\n'\"])+"),
    re.compile(r"(?i)(bearer\s+)[^\s'\",]+"),
    # scheme://user:password@host: the password (a database or broker URL).
    re.compile(r"(://[^/:@\s]+:)[^@\s/]+(@)"),
)


def secrets_of(settings: Settings) -> list[str]:
    """The configured values to mask wherever they appear, also percent-encoded."""
    values = [
        settings.ingest_token,
        settings.read_token,
        settings.metrics_token,
        settings.admin_token,
        settings.checkpoint_key,
        settings.amqp_access_code,
        settings.iotda_sk,  # the SDK signs with it; it is never sent, and never logged
    ]
    found = {value for value in values if value}
    found |= {quote(value, safe="") for value in found}
    return sorted(found, key=len, reverse=True)  # the longest first: no half-masked value


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(_keep_name, text)
    return text


def _keep_name(match: re.Match[str]) -> str:
    return match[1] + MASK + (match[2] if match.lastindex == 2 else "")


def printable(text: str) -> str:
    """Every character that is not printable, escaped as Python would quote it."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def capped(text: str, limit: int = MAX_LINE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text) - limit} more)"


class MaskSecrets(logging.Filter):
    """Mask, escape and cap a record's message and traceback (formatted here, once)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = list(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = capped(printable(mask(message, self._secrets))), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._lines(record.exc_text)
        if record.stack_info:
            record.stack_info = self._lines(record.stack_info)
        return True

    def _lines(self, text: str) -> str:
        """A traceback keeps its lines; each one is masked, escaped and capped."""
        lines = mask(text, self._secrets).splitlines()
        return "\n".join(capped(printable(line)) for line in lines)


def mask_secrets_in_logs(settings: Settings) -> None:
    """Install `MaskSecrets` on every handler of the root logger (records of every logger reach
    those handlers; a filter on a logger would miss its children's)."""
    secrets = secrets_of(settings)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, MaskSecrets) for f in handler.filters):
            handler.addFilter(MaskSecrets(secrets))
