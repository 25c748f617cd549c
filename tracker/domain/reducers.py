"""What each notification type does to the projection: the rows its fold reads, and the fold.

A `Reducer` is named by the types it folds in registry.py. `reads` adds to `Keys` the rows an
event's fold may read, so that live ingestion loads exactly those before folding a batch (replay
folds a whole stream into an empty projection and needs none); `fold` applies the pure reducers
of the machines (device.py, operation.py, task.py) to the rows held in the `Projection` and puts
back what they changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from tracker.domain.device import evolve_track, know_device
from tracker.domain.guards import changed, key_of, stopped, transition
from tracker.domain.notifications import (
    TRACKS,
    AlertChanged,
    AlertEvent,
    AlertStopped,
    BatchTaskObserved,
    BatchTaskUpdated,
    DeviceNotification,
    Notification,
    SubtaskObserved,
)
from tracker.domain.operation import evolve_membership
from tracker.domain.recorded import Recorded
from tracker.domain.subtask import evolve_subtask, know_observed
from tracker.domain.task import evolve_task, observe_task

if TYPE_CHECKING:  # projection.py dispatches through registry.py, which names these
    from tracker.domain.projection import Keys, Projection

N = TypeVar("N", bound=Notification)


@dataclass(frozen=True, slots=True)
class Reducer(Generic[N]):
    reads: Callable[[N, Keys], None]  # adds the keys of the rows a fold of it may read
    fold: Callable[[Projection, Recorded[N]], None]


def _device_rows(n: DeviceNotification, keys: Keys) -> None:
    """The device, both its tracks with all their sub-operations, and its membership."""
    keys.devices.add(n.deviceId)
    keys.members.add((n.operationId, n.track, n.deviceId))


def _fold_device(rows: Projection, event: Recorded[DeviceNotification]) -> None:
    """The sub-operation, then the track, the device and the operation's member."""
    n = event.notification
    key = (n.deviceId, n.track)
    subs = rows.subs.setdefault(key, {})
    sub, track, transition = evolve_track(rows.tracks.get(key), subs, event)
    if sub is None:
        return  # a repeat: nothing new, nothing recorded
    rows.put_sub(key, (n.operationId, n.subOperationId), sub)
    if track is not None:
        rows.put_track(key, track)
    if transition is not None:
        rows.device_transitions.append(transition)
    apps = (rows.tracks.get((n.deviceId, t)) for t in TRACKS)
    known = know_device(
        rows.devices.get(n.deviceId), max(t.app_id for t in apps if t is not None), event
    )
    if known is not None:
        rows.put_device(known)
    member_key = (n.operationId, n.track, n.deviceId)
    before = rows.members.get(member_key)
    of_operation = [s for (operation, _), s in subs.items() if operation == n.operationId]
    member = evolve_membership(before, of_operation, event)
    if member is not None:
        rows.put_member(member_key, before, member)


DEVICE_REPORTS: Reducer[DeviceNotification] = Reducer(_device_rows, _fold_device)


def _task_rows(n: BatchTaskUpdated, keys: Keys) -> None:
    keys.tasks.add(n.notify_data.body.task_id)


def _fold_task(rows: Projection, event: Recorded[BatchTaskUpdated]) -> None:
    task, transition = evolve_task(
        rows.tasks.get(event.notification.notify_data.body.task_id), event
    )
    if task is not None:
        rows.put_task(task)
    if transition is not None:
        rows.task_transitions.append(transition)


TASK_UPDATES: Reducer[BatchTaskUpdated] = Reducer(_task_rows, _fold_task)


def _observed_task_rows(n: BatchTaskObserved, keys: Keys) -> None:
    keys.tasks.add(n.batchtask.task_id)


def _fold_observed_task(rows: Projection, event: Recorded[BatchTaskObserved]) -> None:
    task, transition = observe_task(rows.tasks.get(event.notification.batchtask.task_id), event)
    if task is not None:
        rows.put_task(task)
    if transition is not None:
        rows.task_transitions.append(transition)


OBSERVED_TASKS: Reducer[BatchTaskObserved] = Reducer(_observed_task_rows, _fold_observed_task)


def _subtask_rows(n: SubtaskObserved, keys: Keys) -> None:
    keys.devices.add(n.detail.target)
    keys.members.add((n.task_id, n.track, n.detail.target))


def _fold_subtask(rows: Projection, event: Recorded[SubtaskObserved]) -> None:
    """The task's member, the device's audit trail, and the fleet's entry for the device."""
    n = event.notification
    key = (n.task_id, n.track, n.detail.target)
    before = rows.members.get(key)
    member, transition = evolve_subtask(before, event)
    if member is None:
        return
    rows.put_member(key, before, member)
    if transition is not None:
        rows.device_transitions.append(transition)
    known = know_observed(rows.devices.get(n.detail.target), event)
    if known is not None:
        rows.put_device(known)


OBSERVED_SUBTASKS: Reducer[SubtaskObserved] = Reducer(_subtask_rows, _fold_subtask)


def _alert_rows(n: AlertEvent, keys: Keys) -> None:
    keys.alerts.add(key_of(n))


def _fold_alert_change(rows: Projection, event: Recorded[AlertChanged]) -> None:
    key = key_of(event.notification)
    rows.put_alert(key, changed(rows.alerts.get(key), event.notification))
    rows.alert_transitions.append(transition(event.position, event.received_at, event.notification))


def _fold_alert_stop(rows: Projection, event: Recorded[AlertStopped]) -> None:
    key = key_of(event.notification)
    alert = stopped(rows.alerts.get(key), event.notification)
    if alert is not None:
        rows.put_alert(key, alert)


ALERT_CHANGES: Reducer[AlertChanged] = Reducer(_alert_rows, _fold_alert_change)
ALERT_STOPS: Reducer[AlertStopped] = Reducer(_alert_rows, _fold_alert_stop)
