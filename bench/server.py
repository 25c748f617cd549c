"""`tracker serve` as a real process, configured as a deployment would be: tokens set (the
platform sends one with every delivery), the default log level (so the access log is written).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.support.server import TrackerProcess

INGEST_TOKEN = secrets.token_urlsafe(16)
READ_TOKEN = secrets.token_urlsafe(16)
INGEST_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {INGEST_TOKEN}"}
READ_HEADERS = {"Authorization": f"Bearer {READ_TOKEN}"}


@asynccontextmanager
async def tracker(url: str, log: Path, workers: int = 1) -> AsyncIterator[TrackerProcess]:
    env = {
        "TRACKER_DATABASE_URL": url,
        "TRACKER_INGEST_TOKEN": INGEST_TOKEN,
        "TRACKER_READ_TOKEN": READ_TOKEN,
    }
    args = ("--workers", str(workers)) if workers > 1 else ()
    process = TrackerProcess(env, log, args=args)
    await asyncio.to_thread(process.start)
    try:
        yield process
    finally:
        try:
            await asyncio.to_thread(process.stop)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                process.kill()
