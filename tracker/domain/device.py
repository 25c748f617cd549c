"""A device's upgrade tracks (software, firmware): one state machine each, folded from events.

    idle ──▶ downloading ──▶ downloaded ──▶ updating ──▶ idle
               └──────▶ idle      └──────▶ idle   └──▶ downloaded   (failed or cancelled)

A track shows the sub-operation the device is in now (precedence.py), as that sub-operation's
deliveries describe it (suboperation.py): its furthest state and since when, its ids and
application. Its last result, and the version the device runs, come from the last
sub-operation that has one. Each of those is a function of the *set* of deliveries, so every
arrival order gives the same track; `state_since`, `last_position` and `updated_at` are arrival
facts (when, and where in the log, the deliveries came).

The audit trail records each delivery that says something new, in arrival order; a repeat of
any delivery records nothing and changes nothing.
- `applied: true`: the track now shows what it said.
- `applied: false, reason: "stale"`: its sub-operation had already reached a later step, or
  holds a result that outranks it; it changed nothing.
- `applied: false, reason: "earlier_operation"`: it moved its own sub-operation, so its
  operation's member too, but the device is in another sub-operation now: the track and the
  stuck lists do not follow it.
`valid` says whether the machine allows the move from the state the track showed to the one
reported (a first report, or the same state again, always is): the auditor's flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal, NamedTuple, assert_never

from tracker.domain.notifications import (
    UPGRADE_STATES,
    DeviceNotification,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    SubtaskStatus,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    Track,
    UpgradeState,
)
from tracker.domain.precedence import standing
from tracker.domain.recorded import Recorded
from tracker.domain.suboperation import (
    SubOperation,
    UpgradeResult,
    reported_result,
    reported_state,
    take,
)

# The states a device can be stuck in: any but idle, until its sub-operation's result is in
# (`is_settled`). The stuck listings' partial indexes hold exactly these (store/queries.py).
BUSY_STATES: tuple[UpgradeState, ...] = tuple(s for s in UPGRADE_STATES if s != "idle")
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
Kind = Literal["state", "result", "subtask"]  # subtask: IoTDA (subtask.py)
Reason = Literal["stale", "earlier_operation"]
SubKey = tuple[str, str]  # (operation_id, sub_operation_id)


class TrackState(NamedTuple):
    device_id: str
    track: Track
    app_id: str  # as its current sub-operation's reports name it
    state: UpgradeState | None  # None: no state reported in the current sub-operation
    state_since: datetime | None  # when the current state of the current one was first received
    operation_id: str  # the current sub-operation's
    sub_operation_id: str
    version: str | None  # current version, as of the last result that reported one
    last_result: UpgradeResult | None  # of the last sub-operation with a result
    last_position: int  # the event that last changed this track
    updated_at: datetime  # the latest receive time of a change (never moves back)


class KnownDevice(NamedTuple):
    """A device the fleet has heard from, and its application: the one its tracks' current
    sub-operations name (the greatest, should its two tracks ever disagree)."""

    device_id: str
    app_id: str
    first_seen_at: datetime


def know_device(
    known: KnownDevice | None, app_id: str, event: Recorded[DeviceNotification]
) -> KnownDevice | None:
    """The device's entry after `event`, its tracks naming `app_id`; None when unchanged."""
    if known is None:
        return KnownDevice(event.notification.deviceId, app_id, event.received_at)
    first = min(known.first_seen_at, event.received_at)
    if (known.app_id, known.first_seen_at) == (app_id, first):
        return None
    return KnownDevice(known.device_id, app_id, first)


class DeviceTransition(NamedTuple):
    """One entry of a device's audit trail: a state report, or a result (`kind="result"`: the
    state is unchanged, `result` says what came). See the module for `applied` and `reason`."""

    device_id: str
    position: int
    track: Track
    # IoTDA's subtask statuses for kind "subtask"; a result on a track with no state yet: None
    from_state: UpgradeState | SubtaskStatus | None
    to_state: UpgradeState | SubtaskStatus | None
    valid: bool
    operation_id: str
    sub_operation_id: str
    received_at: datetime
    kind: Kind
    applied: bool
    inconsistent: bool  # the report contradicted itself (`step` and `stepDesc` disagree)
    result: UpgradeResult | None
    reason: Reason | None  # why it was not applied


class Folded(NamedTuple):
    """What one event did to its track: all None for a repeat."""

    sub: SubOperation | None  # its sub-operation, changed
    track: TrackState | None  # the track, if it changed
    transition: DeviceTransition | None


REPEAT = Folded(None, None, None)


def is_valid_move(before: UpgradeState | None, after: UpgradeState) -> bool:
    return before is None or before == after or (before, after) in VALID_MOVES


def is_settled(track: TrackState) -> bool:
    """Whether the result of the track's current sub-operation has arrived (so it is not stuck,
    whatever state it was left in)."""
    last = track.last_result
    return (
        last is not None
        and last.sub_operation_id == track.sub_operation_id
        and last.operation_id == track.operation_id
    )


def evolve_track(
    track: TrackState | None,
    subs: Mapping[SubKey, SubOperation],
    event: Recorded[DeviceNotification],
) -> Folded:
    """Fold one device event into its track, given all the track's sub-operations so far."""
    n = event.notification
    key = (n.operationId, n.subOperationId)
    before = subs.get(key)
    sub = take(before, event)
    if sub is None:
        return REPEAT
    if track is not None and before is not None and _ranks_alike(before, sub):
        # Which sub-operation is current, and which has the last result, can only change when
        # one is new, finishes or takes a result: keep the track's (the common case).
        held = (track.operation_id, track.sub_operation_id)
        now = sub if held == key else subs[held]
        last = None  # a result here changed no result: it is stale, whichever one leads
        version, result = track.version, track.last_result
    else:
        every = [s for k, s in subs.items() if k != key]
        every.append(sub)
        found, last, versioned = standing(every)
        assert found is not None  # noqa: S101 - `every` holds `sub` at least
        now = found
        version = (
            None
            if versioned is None or versioned.result is None
            else (versioned.result.current_version)
        )
        result = None if last is None else last.result
    shown = (
        now.app_id,
        now.state,
        now.state_since,
        now.operation_id,
        now.sub_operation_id,
        version,
        result,
    )
    changed = None
    if track is None or shown != track[2:9]:
        changed = TrackState(
            n.deviceId,
            n.track,
            *shown,
            event.position,
            event.received_at if track is None else max(track.updated_at, event.received_at),
        )
    # Its sub-operation is past it: the event changed neither its furthest state nor its result.
    stale = before is not None and (sub.state, sub.result) == (before.state, before.result)
    return Folded(sub, changed, _transition(track, stale, now, last, event))


def _transition(
    track: TrackState | None,
    stale: bool,
    now: SubOperation,
    last: SubOperation | None,
    event: Recorded[DeviceNotification],
) -> DeviceTransition:
    """The audit entry of `event`, given the sub-operation the track is in (`now`) and the one
    with its last result (`last`: None when there is none, or when the event could not have
    changed which one it is)."""
    n = event.notification
    shown = track.state if track is not None else None
    kind: Kind
    to: UpgradeState | None
    result: UpgradeResult | None
    match n:
        case SwUpgradeStateChanged() | FwUpgradeStateChanged():
            to, inconsistent = reported_state(n)
            kind, valid, result = "state", is_valid_move(shown, to), None
            leading: SubOperation | None = now  # what the track shows for a state...
        case SwUpgradeResult() | FwUpgradeResult():
            to, inconsistent = shown, False
            result = reported_result(n, event.position, event.received_at)
            kind, valid = "result", True
            leading = last  # ...and for a result
        case _:
            assert_never(n)
    reason: Reason | None = None
    if stale:
        reason = "stale"  # its sub-operation is past it
    elif leading is None or _ids(leading) != (n.operationId, n.subOperationId):
        reason = "earlier_operation"  # the device is in another sub-operation now
    return DeviceTransition(
        device_id=n.deviceId,
        position=event.position,
        track=n.track,
        from_state=shown,
        to_state=to,
        valid=valid,
        operation_id=n.operationId,
        sub_operation_id=n.subOperationId,
        received_at=event.received_at,
        kind=kind,
        applied=reason is None,
        inconsistent=inconsistent,
        result=result,
        reason=reason,
    )


def _ranks_alike(before: SubOperation, after: SubOperation) -> bool:
    """Whether a change of a sub-operation leaves its place among the others as it was."""
    return after.result == before.result and (after.state == "idle") == (before.state == "idle")


def _ids(sub: SubOperation) -> SubKey:
    return sub.operation_id, sub.sub_operation_id
