"""Upgrade operations: which devices took part, with their state and result under each, and the
rollup counters kept from them.

Membership is kept per (operation, track, device), so an operation's rollup stays true after its
devices move on to the next operation. A member is its sub-operations' (suboperation.py): the
state of its current one and the result of its last with a result (precedence.py), so any
arrival order gives the same members, and a report of an operation the device has left still
counts here. The rollup (`OperationCounts`, `ErrorCount`,
`VersionCount`) is what `GET /v1/operations/{id}` reads: counters moved by the deltas of each
membership change (`Tally`), in the append's transaction, so reading them is O(1) whatever the
fleet size. Every counter is an order-independent aggregate of the members (a count, a min or a
max of values that only grow), so replay may recount them from the rebuilt members and must get
exactly what the live deltas built; `tracker replay --check` and a property test hold it to that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from tracker.domain.notifications import (
    DeviceNotification,
    Result,
    SubtaskStatus,
    Track,
    UpgradeState,
)
from tracker.domain.precedence import standing
from tracker.domain.recorded import Recorded
from tracker.domain.suboperation import SubOperation

OperationKey = tuple[str, Track]  # (operation_id, track)
# Errors are counted by code and by the first characters of their description: the pair is a
# key of the rollup's index, which PostgreSQL bounds at 2,704 bytes (an operation id of 256
# characters, a code of 128 and this much description fit, at 4 bytes a character).
ERROR_DESC_KEY = 256


class OperationDevice(NamedTuple):
    """One device's part in one operation, on one track."""

    operation_id: str
    track: Track
    device_id: str
    app_id: str  # as of its first report under the operation (fixed, so min() is exact)
    # OceanConnect: the current sub-operation's state (None: only a result has been reported
    # under the operation); IoTDA: the subtask's status (subtask.py)
    state: UpgradeState | SubtaskStatus | None
    result: Result | None
    error_code: str | None
    result_desc: str | None
    target_version: str | None
    current_version: str | None
    first_seen_at: datetime
    last_position: int
    updated_at: datetime  # the latest receive time of a change (never moves back)
    state_since: datetime | None = None  # IoTDA: when the subtask entered its status


# The rollup's counter of each state a member can be in, named after it: OceanConnect's states
# as they are, IoTDA's subtask statuses in snake case. Success and Fail are not states here:
# they are results, counted by `success` and `fail` for both platforms.
STATE_COUNTERS: dict[str, str] = {
    "idle": "idle",
    "downloading": "downloading",
    "downloaded": "downloaded",
    "updating": "updating",
    "Waitting": "waitting",
    "Processing": "processing",
    "FailWaitRetry": "fail_wait_retry",
    "Stopped": "stopped",
    "Removed": "removed",
}


class OperationCounts(NamedTuple):
    """An operation's rollup on one track: members by state and by last result (a counter per
    state, `STATE_COUNTERS`, and per value of `Result`, lower-cased: a test holds them to the
    declarations)."""

    operation_id: str
    track: Track
    app_id: str  # the least of its members' (an operation belongs to one application)...
    max_app_id: str  # ...and the greatest: equal, unless it somehow spans several
    devices: int
    idle: int
    downloading: int
    downloaded: int
    updating: int
    success: int
    fail: int
    first_seen_at: datetime
    last_activity_at: datetime
    # IoTDA's subtask statuses (an OceanConnect operation has none of these)
    waitting: int = 0
    processing: int = 0
    fail_wait_retry: int = 0
    stopped: int = 0
    removed: int = 0


class ErrorCount(NamedTuple):
    """Members whose last result under the operation is FAIL, by error code and description
    (its first ERROR_DESC_KEY characters)."""

    operation_id: str
    track: Track
    error_code: str | None  # firmware results carry none
    result_desc: str | None
    devices: int


class VersionCount(NamedTuple):
    """Members by the target version of their last result under the operation."""

    operation_id: str
    track: Track
    target_version: str
    devices: int


def evolve_membership(
    member: OperationDevice | None,
    subs: Sequence[SubOperation],
    event: Recorded[DeviceNotification],
) -> OperationDevice | None:
    """The device's membership of the event's operation, given the operation's sub-operations
    of that device (the event folded in); None when nothing changes.

    Its state is its current sub-operation's, its result its last result's (precedence.py),
    whether or not the device has moved on to another operation since.
    """
    now, last, _ = standing(subs)
    assert now is not None  # noqa: S101 - the event's own sub-operation is among them
    said = None if last is None else last.result
    if said is None:
        result = code = desc = target = current = None
    else:
        result, code, desc = said.result, said.error_code, said.result_desc
        target, current = said.target_version, said.current_version
    if member is not None and member[4:10] == (now.state, result, code, desc, target, current):
        return None
    n = event.notification
    return OperationDevice(
        n.operationId,
        n.track,
        n.deviceId,
        n.appId if member is None else member.app_id,
        now.state,
        result,
        code,
        desc,
        target,
        current,
        event.received_at if member is None else member.first_seen_at,
        event.position,
        event.received_at if member is None else max(member.updated_at, event.received_at),
    )


@dataclass
class Tally:
    """What a set of membership changes does to the rollup counters: additive deltas."""

    counts: dict[OperationKey, OperationCounts] = field(default_factory=dict)
    errors: Counter[tuple[str, Track, str | None, str | None]] = field(default_factory=Counter)
    versions: Counter[tuple[str, Track, str]] = field(default_factory=Counter)

    def change(self, before: OperationDevice | None, after: OperationDevice) -> None:
        """Count `after` in and `before` (its previous value, if any) out."""
        key = (after.operation_id, after.track)
        delta = Counter[str]()
        if before is None:
            delta["devices"] += 1
        else:
            self._count(before, delta, -1)
        self._count(after, delta, +1)
        counts = self.counts.get(key) or OperationCounts(
            *key,
            after.app_id,
            after.app_id,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            after.first_seen_at,
            after.updated_at,
        )
        self.counts[key] = counts._replace(
            app_id=min(counts.app_id, after.app_id),
            max_app_id=max(counts.max_app_id, after.app_id),
            first_seen_at=min(counts.first_seen_at, after.first_seen_at),
            last_activity_at=max(counts.last_activity_at, after.updated_at),
            **{name: getattr(counts, name) + n for name, n in delta.items()},
        )

    def _count(self, member: OperationDevice, delta: Counter[str], sign: int) -> None:
        if member.state is not None and member.state in STATE_COUNTERS:
            delta[STATE_COUNTERS[member.state]] += sign
        if member.result is not None:
            delta[member.result.lower()] += sign
        if member.result == "FAIL":
            desc = None if member.result_desc is None else member.result_desc[:ERROR_DESC_KEY]
            self.errors[member.operation_id, member.track, member.error_code, desc] += sign
        if member.target_version is not None:
            self.versions[member.operation_id, member.track, member.target_version] += sign

    # Each in its table's key order: the store upserts them in it (store/projections.py).

    def count_deltas(self) -> list[OperationCounts]:
        return [self.counts[key] for key in sorted(self.counts)]

    def error_deltas(self) -> list[ErrorCount]:
        return [ErrorCount(*key, n) for key, n in sorted(self.errors.items(), key=_nulls) if n]

    def version_deltas(self) -> list[VersionCount]:
        return [VersionCount(*key, n) for key, n in sorted(self.versions.items()) if n]


def _nulls(item: tuple[tuple[object, ...], int]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in item[0])


def tally(changes: Iterable[tuple[OperationDevice | None, OperationDevice]]) -> Tally:
    counted = Tally()
    for before, after in changes:
        counted.change(before, after)
    return counted
