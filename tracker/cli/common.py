"""What every command shares: exit codes, the database (configured or embedded), durations."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tracker.config import Settings
from tracker.store.database import Database
from tracker.store.startup import open_migrated

log = logging.getLogger("tracker")

# Exit codes scripts can rely on.
OK = 0
FAILED = 1  # drift (replay --check), a broken hash chain (verify), input refused, server failed
USAGE = 2  # argparse's own
NOT_FOUND = 3
UNAVAILABLE = 4  # the database did not answer in time

EXIT_CODES = (
    "exit codes: 0 ok; 1 drift or tampering found, input refused or failure; 2 usage error; "
    "3 not found; 4 database unavailable"
)


def database_url(settings: Settings) -> str:
    """The configured PostgreSQL, or the embedded one (started or joined here)."""
    if settings.database_url:
        log.info("using PostgreSQL from TRACKER_DATABASE_URL")
        return settings.database_url
    from tracker.store import embedded  # noqa: PLC0415 - pulls in pgserver only when needed

    log.info(
        "using embedded PostgreSQL in %s (TRACKER_DATABASE_URL is unset)",
        (settings.data_dir / "pgdata").resolve(),
    )
    return embedded.start(settings.data_dir)


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[Database]:
    """The database, migrated (so a fresh one answers queries with 'not found', not errors)."""
    opened = await open_migrated(database_url(settings), settings)
    try:
        yield opened
    finally:
        await opened.close()


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> float:
    """'90', '90s', '15m', '1h', '2d' -> seconds (argparse type)."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"not a duration: {text!r} (try 90s, 15m, 1h, 2d)")
    return float(match[1]) * _UNIT[match[2]]
