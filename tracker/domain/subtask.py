"""One device's subtask in an IoTDA upgrade task, as the reconciler observes it: the member of
the task's rollout (the task is the rollout, its id the operation's), and its audit trail.

    Waitting ──▶ Processing ──▶ Success | Fail | FailWaitRetry ──▶ Processing (retried)
        │             │
        └─────────────┴──▶ Stopped | Removed        Fail | Stopped ──▶ Waitting (RetryBatchTask)

IoTDA pushes nothing per device, so every change here is an observation (`SubtaskObserved`)
that the reconciler appends only when it differs from what the member holds; one reconciler
writes at a time (tracker/iotda/reconciler.py), so a device's observations are in the log in
the order they were made, and the last one is the truth. A member's `state` is its subtask's
status; Success and Fail also set its `result`, so the rollup's result counters and its errors
(grouped by `error_code` and `error_msg`) serve both platforms. `state_since` is when the
member entered its status: what "stuck" reads.
"""

from __future__ import annotations

from tracker.domain.device import DeviceTransition, KnownDevice
from tracker.domain.notifications import Result, SubtaskObserved, SubtaskStatus
from tracker.domain.operation import OperationDevice
from tracker.domain.recorded import Recorded
from tracker.domain.suboperation import UpgradeResult

VALID_MOVES: frozenset[tuple[SubtaskStatus, SubtaskStatus]] = frozenset(
    {
        ("Waitting", "Processing"),
        ("Waitting", "Stopped"),
        ("Waitting", "Removed"),
        ("Processing", "Success"),
        ("Processing", "Fail"),
        ("Processing", "FailWaitRetry"),
        ("Processing", "Stopped"),
        ("Processing", "Removed"),
        # The task's retry policy runs a FailWaitRetry subtask again; RetryBatchTask runs the
        # failed and stopped ones again (iotda_client.py, retry_batch_task).
        ("FailWaitRetry", "Processing"),
        ("FailWaitRetry", "Fail"),
        ("FailWaitRetry", "Stopped"),
        ("Fail", "Waitting"),
        ("Fail", "Processing"),
        ("Stopped", "Waitting"),
        ("Stopped", "Processing"),
    }
)


def _reachable(
    moves: frozenset[tuple[SubtaskStatus, SubtaskStatus]],
) -> frozenset[tuple[SubtaskStatus, SubtaskStatus]]:
    """Every (from, to) that one or more moves lead along: the transitive closure."""
    reach = set(moves)
    while True:
        more = {(a, d) for a, b in reach for c, d in reach if b == c} - reach
        if not more:
            return frozenset(reach)
        reach |= more


# A read sees a device only now and then (a 1,000,000-device task takes an hour to read at the
# default budget), so two observations may have moves between them that nobody saw: an
# observed move is valid when the allowed moves lead there. Only a way out of Success or
# Removed, which lead nowhere, is not.
REACHABLE = _reachable(VALID_MOVES)
# A device still has work ahead in these: how long it has been in one is how stuck it is.
BUSY: tuple[SubtaskStatus, ...] = ("Waitting", "Processing", "FailWaitRetry")
RESULTS: dict[SubtaskStatus, Result] = {"Success": "SUCCESS", "Fail": "FAIL"}


def is_valid_move(before: str | None, after: SubtaskStatus) -> bool:
    """Whether an observation may follow another: the allowed moves lead from one to the other
    (REACHABLE), or it is the first."""
    return before is None or (before, after) in REACHABLE


def evolve_subtask(
    member: OperationDevice | None, event: Recorded[SubtaskObserved]
) -> tuple[OperationDevice | None, DeviceTransition | None]:
    """The member after `event`, and its entry in the device's audit trail; (None, None) when
    the observation says nothing the member does not (the reconciler appends none such, but a
    second reconciler's, or an import's, may)."""
    n = event.notification
    detail = n.detail
    error = detail.error
    code = None if error is None else error.error_code
    message = None if error is None else error.error_msg
    said = (detail.status, RESULTS.get(detail.status), code, message)
    if (
        member is not None
        and (member.state, member.result, member.error_code, member.result_desc) == said
    ):
        return None, None
    before = None if member is None else member.state
    moved = member is None or member.state != detail.status
    changed = OperationDevice(
        operation_id=n.task_id,
        track=n.track,
        device_id=detail.target,
        # An application once known stays (an observation names one only when the tracker knows it).
        app_id=(member.app_id if member is not None else "") or n.app_id or "",
        state=detail.status,
        result=RESULTS.get(detail.status),
        error_code=code,
        result_desc=message,
        target_version=None,  # an IoTDA task's versions are in its package, not its subtasks
        current_version=None,
        first_seen_at=event.received_at if member is None else member.first_seen_at,
        last_position=event.position,
        updated_at=event.received_at
        if member is None
        else max(member.updated_at, event.received_at),
        state_since=event.received_at if moved or member is None else member.state_since,
    )
    transition = DeviceTransition(
        device_id=detail.target,
        position=event.position,
        track=n.track,
        from_state=before,
        to_state=detail.status,
        valid=is_valid_move(before, detail.status),
        operation_id=n.task_id,
        sub_operation_id="",  # IoTDA has none: one subtask per device and task
        received_at=event.received_at,
        kind="subtask",
        applied=True,
        inconsistent=False,
        result=_result(event, code, message),
        reason=None,
    )
    return changed, transition


def know_observed(
    known: KnownDevice | None, event: Recorded[SubtaskObserved]
) -> KnownDevice | None:
    """The fleet's entry for the observed device; None when it has one already.

    A device that OceanConnect reports keeps the application its reports name (device.py): an
    observation names one only when the tracker knows the task's."""
    n = event.notification
    if known is None:
        return KnownDevice(n.detail.target, n.app_id or "", event.received_at)
    if known.app_id or not n.app_id:
        return None
    return known._replace(app_id=n.app_id)


def _result(
    event: Recorded[SubtaskObserved], code: str | None, message: str | None
) -> UpgradeResult | None:
    n = event.notification
    outcome = RESULTS.get(n.detail.status)
    if outcome is None:
        return None
    return UpgradeResult(
        result=outcome,
        source_version=None,
        target_version=None,
        current_version=None,
        error_code=code,
        result_desc=message,
        description=n.detail.output,
        upgrade_time=None,
        anomaly=None,
        operation_id=n.task_id,
        sub_operation_id="",
        position=event.position,
        received_at=event.received_at,
    )
