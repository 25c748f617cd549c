"""A cap on open connections per process, set below the open-file limit.

Each connection is a file descriptor. Without a cap, held connections (slow bodies, slow
headers, idle keep-alives) reach the process's open-file limit first, and from then on every
`accept()` fails: the platform's POSTs are reset and the database pools cannot reconnect.
With the cap (TRACKER_MAX_CONNECTIONS), one connection too many is answered at once with a 503
JSON error and `Connection: close`, and the connections already open are served as before.
The open-file limit is raised to its hard limit at start, and the cap lowered to fit under it
with room for the database pools, logs and the connections being turned away.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from functools import cache
from typing import cast

from tracker.documents import ErrorBody, ErrorDocument

log = logging.getLogger("tracker")

SPARE_FILES = 256  # pools, listener, log files, and connections being turned away meanwhile
TURN_AWAY_GRACE = 1.0  # seconds a turned-away client has to read its 503 before we close
REPORT_EVERY = 10.0  # seconds: under a flood, one warning line per period, with the count


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            return soft
        return wanted
    return soft


def connection_cap(wanted: int, file_limit: int, reserved: int) -> int:
    """`wanted`, lowered so that the cap is met before the open-file limit is."""
    return max(1, min(wanted, file_limit - reserved - SPARE_FILES))


@cache
def too_many_connections(cap: int) -> bytes:
    """The whole HTTP answer to a connection past the cap, written before reading anything."""
    error = ErrorBody(
        code="too_many_connections",
        message=f"this server process holds {cap} connections (TRACKER_MAX_CONNECTIONS); "
        "retry later",
        details=[],
    )
    body = ErrorDocument(error=error).to_json()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class TurnedAway(asyncio.Protocol):
    """A connection past the cap: the 503, then the end of our side of it. What the client sends
    is discarded unread; we close when it does, or after TURN_AWAY_GRACE. Closing at once with
    its request unread would reset the connection and could lose the answer on the way."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer
        self._closing: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass
        transport.write(self._answer)
        if transport.can_write_eof():
            transport.write_eof()
        loop = asyncio.get_running_loop()
        self._closing = loop.call_later(TURN_AWAY_GRACE, transport.close)

    def data_received(self, data: bytes) -> None:
        """Discarded: the answer is already written."""

    def eof_received(self) -> bool:
        return False  # the client is done too: close

    def connection_lost(self, _: Exception | None) -> None:
        if self._closing is not None:
            self._closing.cancel()


class TurnAwayReport:
    """One warning line per REPORT_EVERY seconds while connections are turned away."""

    def __init__(self) -> None:
        self._count = 0
        self._since = 0.0

    def turned_away(self, cap: int) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._since >= REPORT_EVERY:
            log.warning(
                "%d connection(s) turned away with 503: %d open, the cap (TRACKER_MAX_CONNECTIONS)",
                self._count,
                cap,
            )
            self._count, self._since = 0, now
