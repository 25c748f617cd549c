from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.server import TrackerProcess

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
