"""A device's upgrade tracks (software, firmware): one state machine each, folded from events.

    idle ──▶ downloading ──▶ downloaded ──▶ updating ──▶ idle
               └──────▶ idle      └──────▶ idle   └──▶ downloaded   (failed or cancelled)

Device notifications carry no timestamp: arrival order is the truth, with two exceptions.
- The platform keeps a push that failed (our 503s included) and pushes it again minutes later.
  Within one sub-operation, a report of a state earlier in the lifecycle than the one the track
  holds is such a late re-push, unless the machine allows that move (updating → downloaded):
  it is recorded with `applied=False` and changes nothing. A new sub-operation always applies.
- A delivery readmitted from `rejected` (`tracker readmit`) carries the time it was first
  received: a state report older than the track's current state, or a result older than the
  track's last result, is recorded with `applied=False` and changes nothing.
Otherwise the state follows what the device reports; a move the machine does not allow is still
taken, and its transition is recorded with `valid=False` for the auditor. The same report again
is a retry: nothing changes and no transition is recorded.

Every result is in the audit trail too (`kind="result"`): it sets the track's last result, its
operation ids and its current version (`curVersion`, which a FAIL reports as well as a SUCCESS),
and ends the sub-operation's wait (`is_settled`: a device with its result is not stuck).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from tracker.domain.notifications import (
    DeviceNotification,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    Result,
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
        # The update failed and the package is still there. LwM2M 1.0's Firmware Update object
        # (Object 5, resource 3 "State"; OMA lwm2m-registry version_history/5-1_0.xml, the
        # machine of figure 29 of the TS / figure E.6.1-1): "If the Update Resource failed, the
        # state returns at Downloaded." The platform's device guide likewise has a device that
        # restarts with its package not yet installed report "downloaded".
        ("updating", "downloaded"),
    }
)
# Where each state comes in one upgrade: what makes a report of an earlier one a late re-push.
RANK: dict[UpgradeState, int] = {"idle": 0, "downloading": 1, "downloaded": 2, "updating": 3}
Kind = Literal["state", "result"]


class UpgradeResult(NamedTuple):
    """A result as reported. `anomaly`: a SUCCESS whose current version is not the target, or a
    FAIL whose current version is the target; None when a version is missing (cannot judge)."""

    result: Result
    source_version: str | None
    target_version: str | None
    current_version: str | None
    error_code: str | None
    result_desc: str | None
    description: str | None
    upgrade_time: str | int | None
    anomaly: bool | None
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
    operation_id: str  # of the latest report applied, state or result
    sub_operation_id: str
    version: str | None  # current version, as of the last result that reported one
    last_result: UpgradeResult | None
    last_position: int  # the event that last changed this track
    updated_at: datetime  # the latest receive time of a change (never moves back)
    # The state of the last report not applied since the track last moved: the platform
    # retries a late re-push like any other, and a retry records nothing.
    unapplied: UpgradeState | None = None


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
    """One entry of a device's audit trail: a state report that moved (or would have moved) its
    track, or a result (`kind="result"`: the state is unchanged, `result` says what came)."""

    device_id: str
    position: int
    track: Track
    from_state: UpgradeState | None
    to_state: UpgradeState | None  # a result on a track with no state yet: None
    valid: bool
    operation_id: str
    sub_operation_id: str
    received_at: datetime
    kind: Kind
    applied: bool  # False: a late re-push or an older readmitted delivery; nothing changed
    inconsistent: bool  # the report contradicted itself (`step` and `stepDesc` disagree)
    result: UpgradeResult | None


def track_of(notification: DeviceNotification) -> Track:
    return notification.track  # a class attribute: isinstance on unions is slow in hot folds


def is_valid_move(before: UpgradeState | None, after: UpgradeState) -> bool:
    return before is None or (before, after) in VALID_MOVES


def is_settled(track: TrackState) -> bool:
    """Whether the result of the track's current sub-operation has arrived (so it is not stuck,
    whatever state it was left in)."""
    last = track.last_result
    return (
        last is not None
        and last.sub_operation_id == track.sub_operation_id
        and last.operation_id == track.operation_id
    )


def reported_state(
    notification: SwUpgradeStateChanged | FwUpgradeStateChanged,
) -> tuple[UpgradeState, bool]:
    """The state a report gives, and whether it contradicts itself.

    Firmware reports say it twice, as `step` ("0".."3") and as `stepDesc`; when the two disagree
    the state follows `step` (the platform's machine-readable field) and the report is marked
    inconsistent. A missing `stepDesc` has nothing to disagree with.
    """
    if isinstance(notification, SwUpgradeStateChanged):
        return notification.swUpgradeState, False
    state = STEP_STATES[notification.step]
    said = notification.stepDesc
    return state, said is not None and said.strip().lower() != state


def evolve_track(
    track: TrackState | None, event: Recorded[DeviceNotification]
) -> tuple[TrackState | None, DeviceTransition | None]:
    """Fold one device event into its track: (new state, or None if unchanged; transition).

    A transition with `applied=False` changes nothing else either (projection.py).
    """
    notification = event.notification
    if isinstance(notification, STATE_CHANGES):
        return _report_state(track, event, notification)
    return _report_result(track, event, notification)


def _report_state(
    track: TrackState | None,
    event: Recorded[DeviceNotification],
    notification: SwUpgradeStateChanged | FwUpgradeStateChanged,
) -> tuple[TrackState | None, DeviceTransition | None]:
    reported, inconsistent = reported_state(notification)
    before = track.state if track else None
    if (
        track is not None
        and before == reported
        and track.app_id == notification.appId
        and track.operation_id == notification.operationId
        and track.sub_operation_id == notification.subOperationId
    ):
        return None, None  # a retry: the device said what it had said
    late = track is not None and _is_late(track, reported, event, notification)
    if late and track is not None and track.unapplied == reported:
        return None, None  # the late report again: a retry
    if before == reported and not late:
        assert track is not None  # noqa: S101 - before is None without a track
        # The same state under new operation ids: no transition.
        return _moved(track, event, reported, track.state_since), None
    transition = DeviceTransition(
        device_id=notification.deviceId,
        position=event.position,
        track=notification.track,
        from_state=before,
        to_state=reported,
        valid=is_valid_move(before, reported),
        operation_id=notification.operationId,
        sub_operation_id=notification.subOperationId,
        received_at=event.received_at,
        kind="state",
        applied=not late,
        inconsistent=inconsistent,
        result=None,
    )
    if late:
        assert track is not None  # noqa: S101 - only a track can be ahead of a report
        return track._replace(unapplied=reported), transition
    base = track or _first_sight(event)
    return _moved(base, event, reported, event.received_at), transition


def _is_late(
    track: TrackState,
    reported: UpgradeState,
    event: Recorded[DeviceNotification],
    notification: DeviceNotification,
) -> bool:
    """Whether a state report comes from before the state the track holds (see the module)."""
    held = track.state
    if held is None:
        return False
    if event.readmitted and track.state_since is not None and event.received_at < track.state_since:
        return True  # older than the state the track holds
    return (
        reported != "idle"
        and RANK[reported] < RANK[held]
        and (held, reported) not in VALID_MOVES
        and notification.subOperationId == track.sub_operation_id
        and notification.operationId == track.operation_id
    )


def _moved(
    base: TrackState,
    event: Recorded[DeviceNotification],
    state: UpgradeState | None,
    state_since: datetime | None,
    unapplied: UpgradeState | None = None,
) -> TrackState:
    # Built field by field rather than with `_replace`: replay folds millions.
    notification = event.notification
    return TrackState(
        device_id=base.device_id,
        track=base.track,
        app_id=notification.appId,
        state=state,
        state_since=state_since,
        operation_id=notification.operationId,
        sub_operation_id=notification.subOperationId,
        version=base.version,
        last_result=base.last_result,
        last_position=event.position,
        updated_at=max(base.updated_at, event.received_at),
        unapplied=unapplied,
    )


def _report_result(
    track: TrackState | None,
    event: Recorded[DeviceNotification],
    notification: DeviceNotification,
) -> tuple[TrackState | None, DeviceTransition | None]:
    result = result_of(event)
    last = track.last_result if track else None
    if last and _same_result(last, result):
        return None, None  # the same result delivered again
    # Arrival order, except that a readmitted result older than the last one is history.
    applied = not (event.readmitted and last is not None and event.received_at < last.received_at)
    base = track or _first_sight(event)
    transition = DeviceTransition(
        device_id=notification.deviceId,
        position=event.position,
        track=notification.track,
        from_state=base.state,
        to_state=base.state,
        valid=True,
        operation_id=notification.operationId,
        sub_operation_id=notification.subOperationId,
        received_at=event.received_at,
        kind="result",
        applied=applied,
        inconsistent=False,
        result=result,
    )
    if not applied:
        return None, transition
    moved = _moved(base, event, base.state, base.state_since, base.unapplied)
    return moved._replace(
        version=base.version if result.current_version is None else result.current_version,
        last_result=result,
    ), transition


def _same_result(a: UpgradeResult, b: UpgradeResult) -> bool:
    """Equal apart from which delivery said it (position, received_at): a re-delivery."""
    return a[:11] == b[:11]  # every field before `position`


def anomaly(outcome: Result, current: str | None, target: str | None) -> bool | None:
    """A result that contradicts its own versions; None when one of them is missing."""
    if current is None or target is None:
        return None
    return current != target if outcome == "SUCCESS" else current == target


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
        anomaly=anomaly(outcome, n.curVersion, n.targetVersion),
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
