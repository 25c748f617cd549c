from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from testkit.server import TrackerProcess
from tests.e2e.browser import launched

StartTracker = Callable[..., TrackerProcess]


@pytest.fixture
def start_tracker(tmp_path: Path) -> Iterator[StartTracker]:
    """Start real `tracker serve` processes; every one still running is killed at the end."""
    started: list[TrackerProcess] = []

    def start(
        env: dict[str, str], port: int | None = None, args: tuple[str, ...] = ()
    ) -> TrackerProcess:
        log_path = tmp_path / f"tracker-{len(started)}.log"
        process = TrackerProcess(env, log_path, port, args)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.close()


@pytest.fixture
def browser(database_url: str) -> Iterator[Browser]:
    """Debian's chromium under Playwright (tests/e2e/browser.py), one per test, opened after the
    test's database and closed before it is dropped: Playwright's sync API keeps an event loop
    running in this thread while it is open, and the database fixtures use asyncio.run."""
    del database_url  # wanted for its order only
    yield from launched()


@pytest.fixture
def two_servers(start_tracker: StartTracker, database_url: str) -> list[str]:
    env = {"TRACKER_DATABASE_URL": database_url, "TRACKER_LOG_LEVEL": "WARNING"}
    return [start_tracker(env).url, start_tracker(env).url]


async def tracker_command(url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tracker",
        *args,
        env={**os.environ, "TRACKER_DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode is not None  # communicate() waits for the exit
    return process.returncode, output.decode()
