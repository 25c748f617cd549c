"""A device's upgrade tracks (software, firmware): one state machine each, folded from events.

    idle ──▶ downloading ──▶ downloaded ──▶ updating ──▶ idle
               └──────▶ idle      └──────▶ idle          (failed or cancelled)

The state always follows what the device reports (device notifications carry no timestamp:
arrival order is the truth); a move the machine does not allow is still taken, and its
transition is recorded with `valid=False` for the auditor. The same report again is a retry:
nothing changes and no transition is recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from tracker.domain.notifications import (
    DeviceNotification,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    Track,
    UpgradeState,
)
from tracker.domain.recorded import Recorded

TRACKS: tuple[Track, ...] = ("software", "firmware")
STEP_STATES: dict[str, UpgradeState] = {
    "0": "idle",
    "1": "downloading",
    "2": "downloaded",
    "3": "updating",
}
STATE_CHANGES = (SwUpgradeStateChanged, FwUpgradeStateChanged)  # a tuple: faster than a union
VALID_MOVES: frozenset[tuple[UpgradeState, UpgradeState]] = frozenset(
    {
        ("idle", "downloading"),
        ("downloading", "downloaded"),
        ("downloaded", "updating"),
        ("updating", "idle"),
        ("downloading", "idle"),
        ("downloaded", "idle"),
    }
)


class UpgradeResult(NamedTuple):
    """A track's last reported result. `anomaly`: SUCCESS although current != target version."""

    result: Literal["SUCCESS", "FAIL"]
    source_version: str
    target_version: str
    current_version: str
    error_code: str | None
    result_desc: str | None
    description: str | None
    upgrade_time: str | int
    anomaly: bool
    operation_id: str
    sub_operation_id: str
    position: int
    received_at: datetime


class TrackState(NamedTuple):
    device_id: str
    track: Track
    app_id: str
    state: UpgradeState | None  # None until the first state notification (a result came first)
    state_since: datetime | None  # when the current state was entered
    operation_id: str
    sub_operation_id: str
    version: str | None  # current version, as of the last SUCCESS
    last_result: UpgradeResult | None
    last_position: int  # the event that last changed this track
    updated_at: datetime  # that event's received_at


class KnownDevice(NamedTuple):
    """A device the fleet has heard from: its application (as of its latest report)."""

    device_id: str
    app_id: str
    first_seen_at: datetime


def know_device(
    known: KnownDevice | None, event: Recorded[DeviceNotification]
) -> KnownDevice | None:
    """The device's entry after `event`; None when unchanged."""
    n = event.notification
    if known is None:
        return KnownDevice(n.deviceId, n.appId, event.received_at)
    return None if known.app_id == n.appId else known._replace(app_id=n.appId)


class DeviceTransition(NamedTuple):
    device_id: str
    position: int
    track: Track
    from_state: UpgradeState | None
    to_state: UpgradeState
    valid: bool
    operation_id: str
    sub_operation_id: str
    received_at: datetime


def track_of(notification: DeviceNotification) -> Track:
    return notification.track  # a class attribute: isinstance on unions is slow in hot folds


def is_valid_move(before: UpgradeState | None, after: UpgradeState) -> bool:
    return before is None or (before, after) in VALID_MOVES


def evolve_track(
    track: TrackState | None, event: Recorded[DeviceNotification]
) -> tuple[TrackState | None, DeviceTransition | None]:
    """Fold one device event into its track: (new state, or None if unchanged; transition)."""
    notification = event.notification
    if isinstance(notification, STATE_CHANGES):
        return _report_state(track, event, notification)
    return _report_result(track, event, notification), None


def _report_state(
    track: TrackState | None,
    event: Recorded[DeviceNotification],
    notification: SwUpgradeStateChanged | FwUpgradeStateChanged,
) -> tuple[TrackState | None, DeviceTransition | None]:
    reported = (
        notification.swUpgradeState
        if isinstance(notification, SwUpgradeStateChanged)
        else STEP_STATES[notification.step]
    )
    before = track.state if track else None
    if (
        track is not None
        and before == reported
        and track.app_id == notification.appId
        and track.operation_id == notification.operationId
        and track.sub_operation_id == notification.subOperationId
    ):
        return None, None  # a retry: the device said what it had said
    base = track or _first_sight(event)
    # Built field by field rather than with `dataclasses.replace`: replay folds millions.
    changed = TrackState(
        device_id=base.device_id,
        track=base.track,
        app_id=notification.appId,
        state=reported,
        state_since=base.state_since if before == reported else event.received_at,
        operation_id=notification.operationId,
        sub_operation_id=notification.subOperationId,
        version=base.version,
        last_result=base.last_result,
        last_position=event.position,
        updated_at=event.received_at,
    )
    if before == reported:
        return changed, None  # same state under new operation ids: no transition
    transition = DeviceTransition(
        device_id=notification.deviceId,
        position=event.position,
        track=base.track,
        from_state=before,
        to_state=reported,
        valid=is_valid_move(before, reported),
        operation_id=notification.operationId,
        sub_operation_id=notification.subOperationId,
        received_at=event.received_at,
    )
    return changed, transition


def _report_result(
    track: TrackState | None,
    event: Recorded[DeviceNotification],
    notification: DeviceNotification,
) -> TrackState | None:
    result = result_of(event)
    last = track.last_result if track else None
    if last and _same_result(last, result):
        return None  # the same result delivered again
    base = track or _first_sight(event)
    return TrackState(
        device_id=base.device_id,
        track=base.track,
        app_id=notification.appId,
        state=base.state,
        state_since=base.state_since,
        operation_id=base.operation_id,
        sub_operation_id=base.sub_operation_id,
        version=result.current_version if result.result == "SUCCESS" else base.version,
        last_result=result,
        last_position=event.position,
        updated_at=event.received_at,
    )


def _same_result(a: UpgradeResult, b: UpgradeResult) -> bool:
    """Equal apart from which delivery said it (position, received_at): a re-delivery."""
    return (
        a.result == b.result
        and a.source_version == b.source_version
        and a.target_version == b.target_version
        and a.current_version == b.current_version
        and a.error_code == b.error_code
        and a.result_desc == b.result_desc
        and a.description == b.description
        and a.upgrade_time == b.upgrade_time
        and a.operation_id == b.operation_id
        and a.sub_operation_id == b.sub_operation_id
    )


def result_of(event: Recorded[DeviceNotification]) -> UpgradeResult:
    n = event.notification
    if isinstance(n, SwUpgradeResult):
        outcome, error_code, result_desc, description = (
            n.swUpgradeResult,
            n.errorCode,
            n.resultDesc,
            n.description,
        )
    elif isinstance(n, FwUpgradeResult):
        outcome, error_code, result_desc, description = n.status, None, n.statusDesc, None
    else:
        raise TypeError(f"not a result notification: {n.notifyType}")
    return UpgradeResult(
        result=outcome,
        source_version=n.sourceVersion,
        target_version=n.targetVersion,
        current_version=n.curVersion,
        error_code=error_code,
        result_desc=result_desc,
        description=description,
        upgrade_time=n.upgradeTime,
        anomaly=outcome == "SUCCESS" and n.curVersion != n.targetVersion,
        operation_id=n.operationId,
        sub_operation_id=n.subOperationId,
        position=event.position,
        received_at=event.received_at,
    )


def _first_sight(event: Recorded[DeviceNotification]) -> TrackState:
    n = event.notification
    return TrackState(
        device_id=n.deviceId,
        track=track_of(n),
        app_id=n.appId,
        state=None,
        state_since=None,
        operation_id=n.operationId,
        sub_operation_id=n.subOperationId,
        version=None,
        last_result=None,
        last_position=event.position,
        updated_at=event.received_at,
    )
