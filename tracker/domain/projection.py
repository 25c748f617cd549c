"""The one fold that live ingestion and replay share: events in, projection rows out.

Live ingestion seeds a `Projection` with the rows its events touch, applies them in log order
and writes back what changed; replay starts empty and applies the whole log. Same function,
same rows: that is what makes replay trustworthy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from tracker.domain.device import (
    DeviceTransition,
    TrackState,
    evolve_track,
    track_of,
)
from tracker.domain.notifications import (
    BatchTaskUpdated,
    DeviceNotification,
    Notification,
    Track,
)
from tracker.domain.operation import OperationDevice, evolve_membership
from tracker.domain.recorded import Recorded
from tracker.domain.task import Task, TaskTransition, evolve_task

TrackKey = tuple[str, Track]  # (device_id, track)
MemberKey = tuple[str, str, Track]  # (operation_id, device_id, track)


@dataclass(frozen=True, slots=True)
class Keys:
    """The rows a batch of events may touch, so live ingestion can load exactly those."""

    tracks: frozenset[TrackKey]
    tasks: frozenset[str]
    members: frozenset[MemberKey]


def keys_of(notifications: list[Notification]) -> Keys:
    tracks: set[TrackKey] = set()
    tasks: set[str] = set()
    members: set[MemberKey] = set()
    for n in notifications:
        if isinstance(n, BatchTaskUpdated):
            tasks.add(n.notify_data.body.task_id)
        else:
            track = track_of(n)
            tracks.add((n.deviceId, track))
            members.add((n.operationId, n.deviceId, track))
    return Keys(frozenset(tracks), frozenset(tasks), frozenset(members))


@dataclass(frozen=True, slots=True)
class Changes:
    tracks: list[TrackState]
    tasks: list[Task]
    members: list[OperationDevice]
    device_transitions: list[DeviceTransition]
    task_transitions: list[TaskTransition]


@dataclass
class Projection:
    tracks: dict[TrackKey, TrackState] = field(default_factory=dict)
    tasks: dict[str, Task] = field(default_factory=dict)
    members: dict[MemberKey, OperationDevice] = field(default_factory=dict)
    device_transitions: list[DeviceTransition] = field(default_factory=list)
    task_transitions: list[TaskTransition] = field(default_factory=list)
    _changed_tracks: set[TrackKey] = field(default_factory=set)
    _changed_tasks: set[str] = field(default_factory=set)
    _changed_members: set[MemberKey] = field(default_factory=set)

    def apply(self, event: Recorded[Notification]) -> None:
        """Fold one event. Events must come in log-position order."""
        if isinstance(event.notification, BatchTaskUpdated):
            self._apply_task(cast("Recorded[BatchTaskUpdated]", event))
        else:
            self._apply_device(cast("Recorded[DeviceNotification]", event))

    def _apply_device(self, event: Recorded[DeviceNotification]) -> None:
        n = event.notification
        key: TrackKey = (n.deviceId, track_of(n))
        track, transition = evolve_track(self.tracks.get(key), event)
        if track is not None:
            self.tracks[key] = track
            self._changed_tracks.add(key)
        if transition is not None:
            self.device_transitions.append(transition)
        member_key: MemberKey = (n.operationId, n.deviceId, key[1])
        member = evolve_membership(self.members.get(member_key), event)
        if member is not None:
            self.members[member_key] = member
            self._changed_members.add(member_key)

    def _apply_task(self, event: Recorded[BatchTaskUpdated]) -> None:
        task_id = event.notification.notify_data.body.task_id
        task, transition = evolve_task(self.tasks.get(task_id), event)
        if task is not None:
            self.tasks[task_id] = task
            self._changed_tasks.add(task_id)
        if transition is not None:
            self.task_transitions.append(transition)

    def take_changes(self) -> Changes:
        """What changed since the last call (rows and new transitions), then forget it."""
        changes = Changes(
            tracks=[self.tracks[k] for k in sorted(self._changed_tracks)],
            tasks=[self.tasks[k] for k in sorted(self._changed_tasks)],
            members=[self.members[k] for k in sorted(self._changed_members)],
            device_transitions=self.device_transitions,
            task_transitions=self.task_transitions,
        )
        self._changed_tracks, self._changed_tasks, self._changed_members = set(), set(), set()
        self.device_transitions, self.task_transitions = [], []
        return changes

    def forget_changes(self) -> None:
        """Replay writes every row once at the end: it need not remember which ones changed."""
        self._changed_tracks.clear()
        self._changed_tasks.clear()
        self._changed_members.clear()

    def take_transitions(self) -> tuple[list[DeviceTransition], list[TaskTransition]]:
        """New transitions only (replay streams them out while keeping the rows in memory)."""
        taken = self.device_transitions, self.task_transitions
        self.device_transitions, self.task_transitions = [], []
        return taken
