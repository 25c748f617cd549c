"""The realistic mix every ingest measurement posts: devices through full upgrades, with results,
retries and odd moves, and batch tasks (tests/support/fleet.py), written once to a file per run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from tests.support.fleet import interleaved, rollout

DEVICES_PER_ROUND = 500
TASKS_PER_ROUND = 20


def fleet(count: int, prefix: str) -> Iterator[bytes]:
    """`count` bodies from successive rollouts, interleaved across streams.

    Each device's deliveries stay in order but arrive hundreds of requests apart, as they do
    from a real fleet; concatenated scripts would make concurrent connections fight over one
    device's rows, which no platform does.
    """
    return itertools.islice(_interleaved_rounds(prefix), count)


def _interleaved_rounds(prefix: str) -> Iterator[bytes]:
    for round_ in itertools.count():
        scripts = rollout(
            f"{prefix}{round_}", devices=DEVICES_PER_ROUND, tasks=TASKS_PER_ROUND, seed=round_
        )
        yield from interleaved(scripts)


def write_lines(path: Path, bodies: Iterable[bytes]) -> Path:
    """One body per line: what wrk's script, the open-loop client and `tracker import` read."""
    with path.open("wb") as out:
        for body in bodies:
            out.write(body)
            out.write(b"\n")
    return path


@dataclass(frozen=True, slots=True)
class Row:
    """A delivery as the log stores it, for the baselines that write without the tracker."""

    stream_type: str
    stream_id: str
    event_type: str
    body: bytes
    occurred_at: datetime | None


def row(body: bytes) -> Row:
    document = orjson.loads(body)
    if "notifyType" in document:
        return Row("device", document["deviceId"], document["notifyType"], body, None)
    task = document["notify_data"]["body"]["task_id"]
    occurred = datetime.fromisoformat(document["event_time_ms"])
    return Row("task", task, "batchtask.update", body, occurred)


def device_ids(lines: Path, limit: int) -> list[str]:
    """Up to `limit` distinct device ids from a file of bodies, in order of first appearance."""
    seen: dict[str, None] = {}
    with lines.open("rb") as source:
        for line in source:
            document = orjson.loads(line)
            if "deviceId" in document:
                seen[document["deviceId"]] = None
                if len(seen) >= limit:
                    break
    return list(seen)
