"""The one fold that live ingestion and replay share: events in, projection rows out.

Live ingestion seeds a `Projection` with the rows its events may need (a device's tracks and
all their sub-operations: which one is current depends on all of them), applies them in log order
and writes back what changed, with the rollup deltas of the memberships that changed (`Tally`).
Replay folds one stream at a time into a fresh `Projection` and writes all of its rows, then
recounts the rollups from the memberships. Same function, same rows: that is what makes replay
trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.domain.activity import MinuteActivity, activity
from tracker.domain.device import (
    TRACKS,
    DeviceTransition,
    KnownDevice,
    SubKey,
    TrackState,
    evolve_track,
    know_device,
    track_of,
)
from tracker.domain.notifications import (
    BatchTaskUpdated,
    DeviceNotification,
    Notification,
    Track,
)
from tracker.domain.operation import OperationDevice, Tally, evolve_membership, tally
from tracker.domain.recorded import Recorded
from tracker.domain.suboperation import SubOperation
from tracker.domain.task import Task, TaskTransition, evolve_task

TrackKey = tuple[str, Track]  # (device_id, track)
MemberKey = tuple[str, Track, str]  # (operation_id, track, device_id)


@dataclass(frozen=True, slots=True)
class Keys:
    """The rows a batch of events may touch, so live ingestion can load exactly those: each
    device's row, both its tracks and all their sub-operations (which one is current depends on
    all of them), the memberships the events name, and the tasks."""

    devices: frozenset[str]
    tasks: frozenset[str]
    members: frozenset[MemberKey]


def keys_of(notifications: list[Notification]) -> Keys:
    devices: set[str] = set()
    tasks: set[str] = set()
    members: set[MemberKey] = set()
    for n in notifications:
        if isinstance(n, BatchTaskUpdated):
            tasks.add(n.notify_data.body.task_id)
        else:
            devices.add(n.deviceId)
            members.add((n.operationId, track_of(n), n.deviceId))
    return Keys(frozenset(devices), frozenset(tasks), frozenset(members))


@dataclass(frozen=True, slots=True)
class Changes:
    devices: list[KnownDevice]
    tracks: list[TrackState]
    subs: list[SubOperation]
    tasks: list[Task]
    members: list[OperationDevice]
    device_transitions: list[DeviceTransition]
    task_transitions: list[TaskTransition]
    rollup: Tally
    activity: list[MinuteActivity]  # the counters the new device transitions add


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
    _changed_devices: set[str] = field(default_factory=set)
    _changed_tracks: set[TrackKey] = field(default_factory=set)
    _changed_subs: set[tuple[TrackKey, SubKey]] = field(default_factory=set)
    _changed_tasks: set[str] = field(default_factory=set)
    # Each changed membership as it was before its first change: the rollup's "minus" side.
    _members_before: dict[MemberKey, OperationDevice | None] = field(default_factory=dict)
    changes: bool = True

    def apply(self, event: Recorded[Notification]) -> None:
        """Fold one event. Events must come in log-position order (per stream, at least)."""
        if isinstance(event.notification, BatchTaskUpdated):
            self._apply_task(event)  # type: ignore[arg-type] # narrowed on its notification
        else:
            self._apply_device(event)  # type: ignore[arg-type]

    def add_sub(self, sub: SubOperation) -> None:
        """Seed a stored sub-operation (live ingestion loads the ones a batch may need)."""
        key = (sub.device_id, sub.track)
        self.subs.setdefault(key, {})[sub.operation_id, sub.sub_operation_id] = sub

    def _apply_device(self, event: Recorded[DeviceNotification]) -> None:
        n = event.notification
        changes = self.changes
        key: TrackKey = (n.deviceId, n.track)
        subs = self.subs.setdefault(key, {})
        sub, track, transition = evolve_track(self.tracks.get(key), subs, event)
        if sub is None:
            return  # a repeat: nothing new, nothing recorded
        sub_key = (n.operationId, n.subOperationId)
        subs[sub_key] = sub
        if track is not None:
            self.tracks[key] = track
        if transition is not None:
            self.device_transitions.append(transition)
        if changes:
            self._changed_subs.add((key, sub_key))
            if track is not None:
                self._changed_tracks.add(key)
        apps = (self.tracks.get((n.deviceId, t)) for t in TRACKS)
        known = know_device(
            self.devices.get(n.deviceId), max(t.app_id for t in apps if t is not None), event
        )
        if known is not None:
            self.devices[n.deviceId] = known
            if changes:
                self._changed_devices.add(n.deviceId)
        member_key: MemberKey = (n.operationId, key[1], n.deviceId)
        before = self.members.get(member_key)
        of_operation = [s for (operation, _), s in subs.items() if operation == n.operationId]
        member = evolve_membership(before, of_operation, event)
        if member is not None:
            if changes:
                self._members_before.setdefault(member_key, before)
            self.members[member_key] = member

    def _apply_task(self, event: Recorded[BatchTaskUpdated]) -> None:
        task_id = event.notification.notify_data.body.task_id
        task, transition = evolve_task(self.tasks.get(task_id), event)
        if task is not None:
            self.tasks[task_id] = task
            if self.changes:
                self._changed_tasks.add(task_id)
        if transition is not None:
            self.task_transitions.append(transition)

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
        )
        self._changed_devices, self._changed_tracks, self._changed_tasks = set(), set(), set()
        self._changed_subs = set()
        self._members_before = {}
        self.device_transitions, self.task_transitions = [], []
        return changes
