"""`tracker serve --workers N`: N server processes on one port (SO_REUSEPORT), one supervisor.

The server is stateless; every worker shares the one PostgreSQL, and their appends run side by
side, each locking only its streams (see store/events.py). The supervisor migrates once,
starts the workers, restarts one that dies, and on SIGTERM or SIGINT passes the signal on and
waits for them to finish.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from tracker.config import Settings, variable
from tracker.iotda.settings import REQUIRED as IOTDA
from tracker.store.preflight import preflight
from tracker.store.startup import open_migrated

log = logging.getLogger("tracker")


def supervise(settings: Settings, database_url: str, workers: int) -> int:
    asyncio.run(_migrate(settings, database_url))
    # The workers' metrics go to files here; any worker's /metrics reads and adds them all up.
    metrics_dir = tempfile.mkdtemp(prefix="tracker-metrics-")
    env = {**os.environ, **worker_environment(settings, database_url)}
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    stopping: list[int] = []

    def stop(signum: int, _: FrameType | None) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # One worker consumes the AMQP queue, if one is set: the messages of a stream are then
    # applied in the order the queue gave them (amqp/consumer.py), which competing
    # processes could not promise. Its replacement, if it dies, consumes in its place.
    # Likewise one reconciles with IoTDA (a lock would let only one anyway: store/iotda.py).
    quiet = {**env, variable("amqp_url"): ""} | dict.fromkeys(map(variable, IOTDA), "")
    envs = [env if index == 0 else quiet for index in range(workers)]
    children = [_start(each) for each in envs]
    pids = [c.pid for c in children]
    log.info("supervising %d workers on port %d: pids %s", workers, settings.port, pids)
    while not stopping:
        time.sleep(0.2)
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping:
                log.warning("worker %d exited with %s; starting another", child.pid, child.poll())
                mark_process_dead(child.pid, metrics_dir)  # type: ignore[no-untyped-call]
                children[index] = _start(envs[index])
    codes = _stop(children, settings.shutdown_grace + 5)
    log.info("workers stopped: exit codes %s", codes)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    # A worker still starting has no handler for SIGTERM yet, and ends by it (-SIGTERM): it had
    # answered nothing, so it stopped as asked. Killed after the grace (-SIGKILL), or any
    # other code, is a failure.
    return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1


def worker_environment(settings: Settings, database_url: str) -> dict[str, str]:
    """A worker reads its settings from its environment alone: it gets every one of ours, so a
    setting given by flag reaches it like one given by variable (config.py `environment`)."""
    return settings.with_overrides(
        database_url=database_url,  # workers join this database, embedded or not
        host=settings.listen_address(),  # resolved and checked by `serve` already
        reuse_port=True,
        workers=1,
    ).environment()


def _start(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tracker", "serve"], env=env)


def _stop(children: list[subprocess.Popen[bytes]], grace: float) -> list[int]:
    """SIGTERM every worker, wait out the grace period, then kill what is left."""
    for child in children:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    codes = []
    for child in children:
        try:
            codes.append(child.wait(max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    return codes


async def _migrate(settings: Settings, database_url: str) -> None:
    """Once, before any worker starts: migrate, and refuse an unsafe database (as `serve`)."""
    database = await open_migrated(database_url, settings)
    try:
        await preflight(database, settings)
    finally:
        await database.close()
