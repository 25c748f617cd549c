"""No process a test starts outlives the test run.

Every process the run starts inherits `MARK` in its environment, however far down the tree and
even once orphaned (re-parented to init). At the end of the run the processes still carrying it,
other than the run itself, are the survivors: they are listed, killed, and fail the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

MARK = "TRACKER_TEST_RUN"


def mark_this_run() -> None:
    os.environ.setdefault(MARK, f"{os.getpid()}-{time.time_ns()}")


def survivors(grace: float = 5.0) -> list[tuple[int, str]]:
    """The marked processes still alive after up to `grace` seconds (stopping takes a moment)."""
    deadline = time.monotonic() + grace
    while True:
        found = _marked()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def kill(found: list[tuple[int, str]]) -> None:
    for pid, _ in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _marked() -> list[tuple[int, str]]:
    token = f"{MARK}={os.environ[MARK]}".encode()
    mine = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == mine:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if state != "Z" and token in environ.split(b"\0"):
            found.append((int(entry.name), command.strip()[:200]))
    return found
