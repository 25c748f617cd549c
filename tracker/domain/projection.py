"""The one fold that live ingestion and replay share: events in, projection rows out.

Live ingestion seeds a `Projection` with the rows its events may need (`keys_of`: a device's
tracks and all their sub-operations, since which one is current depends on all of them), applies
them in log order and writes back what changed, with the rollup deltas of the memberships that
changed (`Tally`). Replay folds one stream at a time into a fresh `Projection` and writes all of
its rows, then recounts the rollups from the memberships. Same function, same rows: that is what
makes replay trustworthy.

Which reducer folds an event, and which rows it reads, is its type's entry in registry.py; the
reducers (reducers.py) put what they fold here, and the projection remembers what changed.
store/rows.py binds each kind of row held here to its table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import assert_never

from tracker.domain.activity import MinuteActivity, activity
from tracker.domain.device import DeviceTransition, KnownDevice, SubKey, TrackState
from tracker.domain.guards import Alert, AlertKey, AlertTransition
from tracker.domain.notifications import Notification, Track
from tracker.domain.operation import OperationDevice, Tally, tally
from tracker.domain.recorded import Recorded
from tracker.domain.registry import REDUCERS
from tracker.domain.suboperation import SubOperation
from tracker.domain.task import Task, TaskTransition

TrackKey = tuple[str, Track]  # (device_id, track)
MemberKey = tuple[str, Track, str]  # (operation_id, track, device_id)
HeldRow = KnownDevice | TrackState | SubOperation | OperationDevice | Task | Alert  # read back
_FOLDS = {model: reducer.fold for model, reducer in REDUCERS.items()}  # replay's hot path


@dataclass(slots=True)
class Keys:
    """The rows a batch of events may touch, so live ingestion can load exactly those: each
    device's row, both its tracks and all their sub-operations (which one is current depends on
    all of them), the memberships the events name, and the tasks. Each reducer adds its own."""

    devices: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)
    members: set[MemberKey] = field(default_factory=set)
    alerts: set[AlertKey] = field(default_factory=set)


def keys_of(notifications: Iterable[Notification]) -> Keys:
    keys = Keys()
    for n in notifications:
        REDUCERS[type(n)].reads(n, keys)
    return keys


@dataclass(frozen=True, slots=True)
class Changes:
    """What a batch of events changed: rows, new transitions, rollup deltas."""

    devices: list[KnownDevice]
    tracks: list[TrackState]
    subs: list[SubOperation]
    tasks: list[Task]
    members: list[OperationDevice]
    device_transitions: list[DeviceTransition]
    task_transitions: list[TaskTransition]
    rollup: Tally
    activity: list[MinuteActivity]  # the counters the new device transitions add
    alerts: list[Alert]
    alert_transitions: list[AlertTransition]


@dataclass
class Projection:
    """Rows by key, as folded so far. `changes`: remember what changed and the rollup's "before"
    side (live ingestion writes only that); replay writes every row and needs neither."""

    devices: dict[str, KnownDevice] = field(default_factory=dict)
    tracks: dict[TrackKey, TrackState] = field(default_factory=dict)
    # Each track's sub-operations, by (operation_id, sub_operation_id).
    subs: dict[TrackKey, dict[SubKey, SubOperation]] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    members: dict[MemberKey, OperationDevice] = field(default_factory=dict)
    device_transitions: list[DeviceTransition] = field(default_factory=list)
    task_transitions: list[TaskTransition] = field(default_factory=list)
    alerts: dict[AlertKey, Alert] = field(default_factory=dict)
    alert_transitions: list[AlertTransition] = field(default_factory=list)
    _changed_devices: set[str] = field(default_factory=set)
    _changed_tracks: set[TrackKey] = field(default_factory=set)
    _changed_subs: set[tuple[TrackKey, SubKey]] = field(default_factory=set)
    _changed_tasks: set[str] = field(default_factory=set)
    _changed_alerts: set[AlertKey] = field(default_factory=set)
    # Each changed membership as it was before its first change: the rollup's "minus" side.
    _members_before: dict[MemberKey, OperationDevice | None] = field(default_factory=dict)
    changes: bool = True

    def apply(self, event: Recorded[Notification]) -> None:
        """Fold one event with its type's reducer. Events must come in log-position order (per
        stream, at least)."""
        _FOLDS[type(event.notification)](self, event)

    def seed(self, row: HeldRow) -> None:
        """Hold a stored row (live ingestion loads the ones a batch may need), as unchanged."""
        match row:
            case KnownDevice():
                self.devices[row.device_id] = row
            case TrackState():
                self.tracks[row.device_id, row.track] = row
            case SubOperation():
                self.add_sub(row)
            case OperationDevice():
                self.members[row.operation_id, row.track, row.device_id] = row
            case Task():
                self.tasks[row.task_id] = row
            case Alert():
                self.alerts[row.guard, row.operation_id, row.track] = row
            case _:
                assert_never(row)

    def add_sub(self, sub: SubOperation) -> None:
        """Seed a stored sub-operation (live ingestion loads the ones a batch may need)."""
        key = (sub.device_id, sub.track)
        self.subs.setdefault(key, {})[sub.operation_id, sub.sub_operation_id] = sub

    # What the reducers put: the row, and (with `changes`) that it changed.

    def put_sub(self, key: TrackKey, sub_key: SubKey, sub: SubOperation) -> None:
        self.subs.setdefault(key, {})[sub_key] = sub
        if self.changes:
            self._changed_subs.add((key, sub_key))

    def put_track(self, key: TrackKey, track: TrackState) -> None:
        self.tracks[key] = track
        if self.changes:
            self._changed_tracks.add(key)

    def put_device(self, device: KnownDevice) -> None:
        self.devices[device.device_id] = device
        if self.changes:
            self._changed_devices.add(device.device_id)

    def put_member(
        self, key: MemberKey, before: OperationDevice | None, member: OperationDevice
    ) -> None:
        """`member`, which was `before` (the rollup counts that one out, this one in)."""
        if self.changes:
            self._members_before.setdefault(key, before)
        self.members[key] = member

    def put_task(self, task: Task) -> None:
        self.tasks[task.task_id] = task
        if self.changes:
            self._changed_tasks.add(task.task_id)

    def put_alert(self, key: AlertKey, alert: Alert) -> None:
        self.alerts[key] = alert
        if self.changes:
            self._changed_alerts.add(key)

    def take_changes(self) -> Changes:
        """What changed since the last call (rows, new transitions, rollup deltas); then forget."""
        changed_members = sorted(self._members_before)
        changes = Changes(
            devices=[self.devices[k] for k in sorted(self._changed_devices)],
            tracks=[self.tracks[k] for k in sorted(self._changed_tracks)],
            subs=[self.subs[k][s] for k, s in sorted(self._changed_subs)],
            tasks=[self.tasks[k] for k in sorted(self._changed_tasks)],
            members=[self.members[k] for k in changed_members],
            device_transitions=self.device_transitions,
            task_transitions=self.task_transitions,
            rollup=tally((self._members_before[k], self.members[k]) for k in changed_members),
            activity=activity(self.device_transitions),
            alerts=[self.alerts[k] for k in sorted(self._changed_alerts)],
            alert_transitions=self.alert_transitions,
        )
        self._changed_devices, self._changed_tracks, self._changed_tasks = set(), set(), set()
        self._changed_subs, self._changed_alerts = set(), set()
        self._members_before = {}
        self.device_transitions, self.task_transitions = [], []
        self.alert_transitions = []
        return changes
