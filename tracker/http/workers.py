"""`tracker serve --workers N`: N server processes on one port (SO_REUSEPORT), one supervisor.

The server is stateless; every worker shares the one PostgreSQL, and the append lock orders
their writes (see store/events.py). The supervisor migrates once, starts the workers, restarts
one that dies, and on SIGTERM or SIGINT passes the signal on and waits for them to finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from tracker.config import Settings
from tracker.store.database import open_migrated

log = logging.getLogger("tracker")


def supervise(settings: Settings, database_url: str, workers: int) -> int:
    asyncio.run(_migrate(settings, database_url))
    env = {
        **os.environ,
        "TRACKER_DATABASE_URL": database_url,  # workers join this database, embedded or not
        "TRACKER_REUSE_PORT": "1",
        "TRACKER_WORKERS": "1",
        "TRACKER_HOST": settings.host,
        "TRACKER_PORT": str(settings.port),
        "TRACKER_MAX_BODY_BYTES": str(settings.max_body_bytes),
        "TRACKER_LOG_LEVEL": settings.log_level,
    }
    command = [sys.executable, "-m", "tracker", "serve"]
    stopping: list[int] = []

    def stop(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = [subprocess.Popen(command, env=env) for _ in range(workers)]  # noqa: S603
    log.info(
        "supervising %d workers on port %d: pids %s",
        workers,
        settings.port,
        [c.pid for c in children],
    )
    while not stopping:
        time.sleep(0.2)
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping:
                log.warning(
                    "worker %d exited with %s; starting another", child.pid, child.returncode
                )
                children[index] = subprocess.Popen(command, env=env)  # noqa: S603
    for child in children:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + settings.shutdown_grace + 5
    codes = []
    for child in children:
        try:
            codes.append(child.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    log.info("workers stopped: exit codes %s", codes)
    return 0 if all(code == 0 for code in codes) else 1


async def _migrate(settings: Settings, database_url: str) -> None:
    database = await open_migrated(database_url, settings)
    await database.close()
