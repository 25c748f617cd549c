"""Every notification type the projections fold, in one table (cosmicpython's `HANDLERS`).

An entry is all the tracker knows about a type: its name in the log (`event_type`), the model
that validates it, how a delivery is recognised as one (`shape`), the stream it is appended to
and its id there, and its reducer (reducers.py). What treats types differently reads this table
and nothing else:
- delivery.py: recognising, validating and keying a delivery (`decode`), and replay's decoding of
  a logged event (`decode_logged`);
- projection.py: which rows a batch must load (`keys_of`) and which fold applies an event;
- store/rebuild.py: which streams hold projected events (`PROJECTED_STREAMS`);
- http/routes.py: the bodies the API documents as recognised (`PUSHED_MODELS`).
A new type is a model (notifications.py, in the `Notification` union), an entry here and its
reducer; the type checker then names every `match` that must learn it.

A type no platform pushes (an event the tracker writes itself, as a reconciler's observation of
a batch task would be) has no `shape`: no delivery is ever recognised as one, and it is appended
under its name and folded like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel

from tracker.domain.guards import key_of
from tracker.domain.notifications import (
    AlertChanged,
    AlertEvent,
    AlertStopped,
    BatchTaskObserved,
    BatchTaskUpdated,
    DeviceNotification,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    Notification,
    SubtaskObserved,
    SwUpgradeResult,
    SwUpgradeStateChanged,
)
from tracker.domain.reducers import (
    ALERT_CHANGES,
    ALERT_STOPS,
    DEVICE_REPORTS,
    OBSERVED_SUBTASKS,
    OBSERVED_TASKS,
    TASK_UPDATES,
    Reducer,
)

N = TypeVar("N", bound=Notification)
ProjectedStream = Literal["device", "task", "alert"]  # the streams projected events are appended to
PROJECTED_STREAMS: tuple[ProjectedStream, ...] = get_args(ProjectedStream)


def _untimed(_: object) -> datetime | None:
    return None  # OceanConnect's notifications carry no time


def _admissible(_: object) -> Mapping[str, str]:
    return {}


def _always(_: object) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class NotificationType(Generic[N]):
    name: str  # its `event_type` in the log
    model: type[N]  # validates a body (422 on failure), and folds as `Recorded[N]`
    shape: Mapping[str, str] | None  # a pushed body has these fields with these values
    stream: ProjectedStream
    stream_id: Callable[[N], str]
    reducer: Reducer[N]
    occurred_at: Callable[[N], datetime | None] = _untimed  # the platform's time, if it says
    # Fields a new delivery may not carry, and why: refused (422), though replay reads them.
    inadmissible: Callable[[N], Mapping[str, str]] = _admissible
    projected: Callable[[N], bool] = _always  # False: logged in its stream, never folded

    def recognises(self, document: Mapping[str, object]) -> bool:
        """Whether a delivered body is of this type (it may still fail validation)."""
        return self.shape is not None and all(
            document.get(field) == value for field, value in self.shape.items()
        )


def _device_id(n: DeviceNotification) -> str:
    return n.deviceId


def _pushed_by_oceanconnect(
    notify_type: str, model: type[DeviceNotification]
) -> NotificationType[DeviceNotification]:
    """A device notification: recognised by its `notifyType`, under which it is logged."""
    return NotificationType(
        notify_type, model, {"notifyType": notify_type}, "device", _device_id, DEVICE_REPORTS
    )


def _task_id(n: BatchTaskUpdated) -> str:
    return n.notify_data.body.task_id


def _is_upgrade(n: BatchTaskUpdated) -> bool:
    # A batch task of another type (creating devices, sending commands...) is logged in its
    # task's stream, and not projected: only upgrades have a machine here.
    return n.is_upgrade


def _observed_task_id(n: BatchTaskObserved) -> str:
    return n.batchtask.task_id


def _observed_upgrade(n: BatchTaskObserved) -> bool:
    return n.is_upgrade


def _target(n: SubtaskObserved) -> str:
    return n.detail.target


def _alert_id(n: AlertEvent) -> str:
    """One stream per (guard, rollout): the guard's name has no '/', nor has the track."""
    guard, operation_id, track = key_of(n)
    return f"{guard}/{track}/{operation_id}"


# In the order a body is tried against them: the first whose shape it has is its type. (Not
# annotated as a whole, so that each entry is type-checked against its own model.)
_DECLARED = (
    _pushed_by_oceanconnect("swUpgradeStateChangeNotify", SwUpgradeStateChanged),
    _pushed_by_oceanconnect("swUpgradeResultNotify", SwUpgradeResult),
    _pushed_by_oceanconnect("fwUpgradeStateChangeNotify", FwUpgradeStateChanged),
    _pushed_by_oceanconnect("fwUpgradeResultNotify", FwUpgradeResult),
    NotificationType(
        "batchtask.update",
        BatchTaskUpdated,
        {"resource": "batchtask", "event": "update"},  # IoTDA's resource and event
        "task",
        _task_id,
        TASK_UPDATES,
        occurred_at=BatchTaskUpdated.occurred_at,
        inadmissible=BatchTaskUpdated.inadmissible_times,
        projected=_is_upgrade,
    ),
    # Written by the reconciler (tracker/iotda/), never pushed: no shape.
    NotificationType(
        "iotda.batchtask.observed",
        BatchTaskObserved,
        None,
        "task",
        _observed_task_id,
        OBSERVED_TASKS,
        projected=_observed_upgrade,
    ),
    NotificationType(
        "iotda.subtask.observed",
        SubtaskObserved,
        None,
        "device",
        _target,
        OBSERVED_SUBTASKS,
    ),
    # Written by the guards (tracker/alerts/), never pushed: no shape.
    NotificationType("alert.changed", AlertChanged, None, "alert", _alert_id, ALERT_CHANGES),
    NotificationType("alert.stopped", AlertStopped, None, "alert", _alert_id, ALERT_STOPS),
)
NOTIFICATION_TYPES: tuple[NotificationType[Any], ...] = _DECLARED
BY_NAME: dict[str, NotificationType[Any]] = {t.name: t for t in NOTIFICATION_TYPES}
REDUCERS: dict[type[BaseModel], Reducer[Any]] = {t.model: t.reducer for t in NOTIFICATION_TYPES}
PUSHED_MODELS: tuple[type[BaseModel], ...] = tuple(
    t.model for t in NOTIFICATION_TYPES if t.shape is not None
)


def recognised(document: Mapping[str, object]) -> NotificationType[Any] | None:
    """The type a delivered body is of; None: one the projections do not fold."""
    return next((t for t in NOTIFICATION_TYPES if t.recognises(document)), None)
