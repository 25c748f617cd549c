"""A rollout's activity, minute by minute: how many state reports and results arrived, and how
many reports the machine does not allow. Counters folded from the audit trail as it grows, so
a chart of a rollout's whole life reads one row per minute, never its millions of transitions.
An IoTDA subtask's observed change counts as a report, or as a result when it is Success or Fail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from tracker.domain.device import DeviceTransition
from tracker.domain.notifications import Track


class MinuteActivity(NamedTuple):
    operation_id: str
    track: Track
    minute: datetime  # received_at, UTC, cut to the minute
    reports: int  # state reports recorded (applied or not)
    invalid: int  # of those, moves the platform's machine does not make
    successes: int  # results SUCCESS
    failures: int  # results FAIL


def minute_of(received_at: datetime) -> datetime:
    return received_at.astimezone(UTC).replace(second=0, microsecond=0)


def activity(transitions: Iterable[DeviceTransition]) -> list[MinuteActivity]:
    """The counters `transitions` add, one row per (operation, track, minute), in key order."""
    counted: Counter[tuple[str, Track, datetime, str]] = Counter()
    for t in transitions:
        key = (t.operation_id, t.track, minute_of(t.received_at))
        if t.kind == "state" or (t.kind == "subtask" and t.result is None):
            counted[(*key, "reports")] += 1
            if not t.valid:
                counted[(*key, "invalid")] += 1
        elif t.result is not None:
            counted[(*key, "successes" if t.result.result == "SUCCESS" else "failures")] += 1
    rows: dict[tuple[str, Track, datetime], dict[str, int]] = {}
    for (operation_id, track, minute, what), n in counted.items():
        rows.setdefault((operation_id, track, minute), {})[what] = n
    return [
        MinuteActivity(
            *key,
            reports=n.get("reports", 0),
            invalid=n.get("invalid", 0),
            successes=n.get("successes", 0),
            failures=n.get("failures", 0),
        )
        for key, n in sorted(rows.items())
    ]
