"""The one fold that live ingestion and replay share: events in, projection rows out.

Live ingestion seeds a `Projection` with the rows its events touch, applies them in log order
and writes back what changed, with the rollup deltas of the memberships that changed (`Tally`).
Replay folds one stream at a time into a fresh `Projection` and writes all of its rows, then
recounts the rollups from the memberships. Same function, same rows: that is what makes replay
trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tracker.domain.activity import MinuteActivity, activity
from tracker.domain.device import (
    DeviceTransition,
    KnownDevice,
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
from tracker.domain.task import Task, TaskTransition, evolve_task

TrackKey = tuple[str, Track]  # (device_id, track)
MemberKey = tuple[str, Track, str]  # (operation_id, track, device_id)


@dataclass(frozen=True, slots=True)
class Keys:
    """The rows a batch of events may touch, so live ingestion can load exactly those."""

    devices: frozenset[str]
    tracks: frozenset[TrackKey]
    tasks: frozenset[str]
    members: frozenset[MemberKey]


def keys_of(notifications: list[Notification]) -> Keys:
    devices: set[str] = set()
    tracks: set[TrackKey] = set()
    tasks: set[str] = set()
    members: set[MemberKey] = set()
    for n in notifications:
        if isinstance(n, BatchTaskUpdated):
            tasks.add(n.notify_data.body.task_id)
        else:
            track = track_of(n)
            devices.add(n.deviceId)
            tracks.add((n.deviceId, track))
            members.add((n.operationId, track, n.deviceId))
    return Keys(frozenset(devices), frozenset(tracks), frozenset(tasks), frozenset(members))


@dataclass(frozen=True, slots=True)
class Changes:
    devices: list[KnownDevice]
    tracks: list[TrackState]
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
    tasks: dict[str, Task] = field(default_factory=dict)
    members: dict[MemberKey, OperationDevice] = field(default_factory=dict)
    device_transitions: list[DeviceTransition] = field(default_factory=list)
    task_transitions: list[TaskTransition] = field(default_factory=list)
    _changed_devices: set[str] = field(default_factory=set)
    _changed_tracks: set[TrackKey] = field(default_factory=set)
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

    def _apply_device(self, event: Recorded[DeviceNotification]) -> None:
        n = event.notification
        changes = self.changes
        key: TrackKey = (n.deviceId, n.track)
        track, transition = evolve_track(self.tracks.get(key), event)
        if track is not None:
            self.tracks[key] = track
            if changes:
                self._changed_tracks.add(key)
        if transition is not None:
            self.device_transitions.append(transition)
            if not transition.applied:
                return  # recorded for the auditor; the device and its operations are as they were
        known = know_device(self.devices.get(n.deviceId), event)
        if known is not None:
            self.devices[n.deviceId] = known
            if changes:
                self._changed_devices.add(n.deviceId)
        member_key: MemberKey = (n.operationId, key[1], n.deviceId)
        before = self.members.get(member_key)
        member = evolve_membership(before, event)
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
            tasks=[self.tasks[k] for k in sorted(self._changed_tasks)],
            members=[self.members[k] for k in changed_members],
            device_transitions=self.device_transitions,
            task_transitions=self.task_transitions,
            rollup=tally((self._members_before[k], self.members[k]) for k in changed_members),
            activity=activity(self.device_transitions),
        )
        self._changed_devices, self._changed_tracks, self._changed_tasks = set(), set(), set()
        self._members_before = {}
        self.device_transitions, self.task_transitions = [], []
        return changes
