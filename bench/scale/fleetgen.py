"""The fleet's deliveries, as a stream ordered by the time they arrive: `stream(fleet)` yields
(received_at in µs since the epoch, body) with devices interleaved as a real fleet delivers.

Each device goes through one upgrade session on its operation's track: downloading →
downloaded → updating → idle, then a result. About 8% FAIL (each error code with its own path
and resultDesc), 2% stop in a state other than idle (stuck), 1% make an illegal move, and 10%
of the state reports are delivered twice (the platform retries, up to two minutes later, so
sometimes after the next report). Batch tasks go Waitting → Processing → a final status, with
re-deliveries and a late event. Bodies use the platforms' exact field names, written as
`json.dumps` writes them, from string templates (fast: no JSON encoder per body).

Streaming: sessions are taken in order of their start; an event is yielded once no session
yet to start can produce an earlier one, so only the sessions in flight are held in memory.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from datetime import UTC, datetime

from bench.scale.plan import Fleet, Operation, Task

SECOND = 1_000_000  # µs
STEPS = {"idle": "0", "downloading": "1", "downloaded": "2", "updating": "3"}
# errorCode, resultDesc, the states the device reports, weight among failures
ERRORS = (
    ("E101", "download timeout", ("downloading", "idle"), 35),
    ("E102", "package verification failed", ("downloading", "downloaded", "idle"), 15),
    ("E103", "insufficient storage", ("downloading", "idle"), 10),
    ("E201", "update failed, rolled back", ("downloading", "downloaded", "updating", "idle"), 20),
    (
        "E202",
        "device rebooted during update",
        ("downloading", "downloaded", "updating", "downloaded", "idle"),
        10,
    ),
    ("E301", "battery too low", ("downloading", "downloaded", "idle"), 10),
)
_ERROR_WEIGHTS = [e[3] for e in ERRORS]
FULL = ("downloading", "downloaded", "updating", "idle")
STUCK, FAILED, SKIPS, BACKWARDS = 0.02, 0.10, 0.107, 0.110  # cumulative shares of sessions
DUPLICATE = 0.10
ANOMALY = 0.002  # SUCCESS reported with the source version still running
# (from, to) -> (least, most) seconds between the two reports
GAPS = {("downloading", "downloaded"): (20, 600), ("downloaded", "updating"): (5, 60)}
OTHER_GAP = (10, 300)

_SW_STATE = '{"notifyType": "swUpgradeStateChangeNotify", %s, "swUpgradeState": "%s"}'
_FW_STATE = '{"notifyType": "fwUpgradeStateChangeNotify", %s, "step": "%s", "stepDesc": "%s"}'
_SW_RESULT = (
    '{"notifyType": "swUpgradeResultNotify", %s, "curVersion": "%s", "targetVersion": "%s", '
    '"sourceVersion": "%s", "swUpgradeResult": "%s", "upgradeTime": "%d", "resultDesc": "%s", '
    '"errorCode": "%s", "description": "%s"}'
)
_FW_RESULT = (
    '{"notifyType": "fwUpgradeResultNotify", %s, "curVersion": "%s", "targetVersion": "%s", '
    '"sourceVersion": "%s", "status": "%s", "statusDesc": "%s", "upgradeTime": "%d"}'
)
_TASK = (
    '{"resource": "batchtask", "event": "update", "event_time": "%s", "event_time_ms": "%s", '
    '"request_id": "%s", "notify_data": {"body": {"app_id": "%s", "task_id": "%s", '
    '"task_type": "%s", "status": "%s", "status_desc": "%s"}}}'
)
TASK_DESC = {
    "Waitting": "waiting for execution",
    "Processing": "executing",
    "Success": "all subtasks succeeded",
    "PartialSuccess": "some subtasks failed",
    "Fail": "all subtasks failed",
    "Stopped": "stopped by user",
}
FINALS = (("Success", 60), ("PartialSuccess", 20), ("Fail", 10), ("Stopped", 10))

Delivery = tuple[int, bytes]  # (received_at, µs since the epoch; body)


def stream(fleet: Fleet) -> Iterator[Delivery]:
    pending: list[tuple[int, int, bytes]] = []  # (received_at, sequence, body): a heap
    sequence = 0
    starts = [_device_starts(fleet, op) for op in fleet.operations]
    tasks = ((t.start_us, -1, index) for index, t in enumerate(fleet.tasks))
    rngs = [random.Random(f"{fleet.seed}/{op.number}") for op in fleet.operations]  # noqa: S311
    task_rng = random.Random(f"{fleet.seed}/tasks")  # noqa: S311 - seeded: a reproducible fleet
    for start, number, rank in heapq.merge(*starts, tasks):
        while pending and pending[0][0] < start:
            at, _, body = heapq.heappop(pending)
            yield at, body
        if number < 0:
            made = _task(fleet.tasks[rank], task_rng)
        else:
            op = fleet.operations[number]
            made = _device(fleet, op, rank, start, rngs[number])
        for at, body in made:
            heapq.heappush(pending, (at, sequence, body))
            sequence += 1
    while pending:
        at, _, body = heapq.heappop(pending)
        yield at, body


def _device_starts(fleet: Fleet, op: Operation) -> Iterator[tuple[int, int, int]]:
    """(start, operation, rank) of each device's session, in increasing start."""
    rng = random.Random(f"{fleet.seed}/{op.number}/starts")  # noqa: S311 - seeded
    step = op.spread_us / max(1, len(op.members))
    for rank in range(len(op.members)):
        yield op.start_us + int((rank + rng.random()) * step), op.number, rank


def _device(
    fleet: Fleet, op: Operation, rank: int, start: int, rng: random.Random
) -> list[Delivery]:
    device = fleet.device_id(op.members[rank])
    ids = (
        f'"deviceId": "{device}", "appId": "{op.app_id}", "operationId": "{op.operation_id}", '
        f'"subOperationId": "{op.sub_operation_id(rank)}"'
    )
    states, failure = _script(rng)
    out: list[Delivery] = []
    at, before = start, ""
    for state in states:
        if before:
            least, most = GAPS.get((before, state), OTHER_GAP)
            at += rng.randint(least * SECOND, most * SECOND)
        if op.track == "software":
            body = (_SW_STATE % (ids, state)).encode()
        else:
            body = (_FW_STATE % (ids, STEPS[state], state)).encode()
        out.append((at, body))
        if rng.random() < DUPLICATE:
            out.append((at + rng.randint(SECOND, 120 * SECOND), body))
        before = state
    if failure != "stuck":
        at += rng.randint(SECOND // 5, 5 * SECOND)
        out.append((at, _result(op, ids, failure, (at - start) // SECOND, rng)))
    return out


def _script(rng: random.Random) -> tuple[tuple[str, ...], str | None]:
    """The states a device reports, and how it ends: "stuck", an error code, or None (SUCCESS)."""
    draw = rng.random()
    if draw < STUCK:
        return FULL[: rng.randint(1, 3)], "stuck"
    if draw < FAILED:
        code, _, states, _ = rng.choices(ERRORS, _ERROR_WEIGHTS)[0]
        return states, code
    if draw < SKIPS:
        return ("downloading", "updating", "idle"), None  # downloading → updating: illegal
    if draw < BACKWARDS:
        return ("downloaded", "downloading", "downloaded", "updating", "idle"), None  # illegal
    return FULL, None


def _result(op: Operation, ids: str, code: str | None, seconds: int, rng: random.Random) -> bytes:
    ok = code is None
    current = op.target_version if ok and rng.random() >= ANOMALY else op.source_version
    desc = "upgrade succeeded" if ok else next(e[1] for e in ERRORS if e[0] == code)
    versions = (current, op.target_version, op.source_version)
    if op.track == "software":
        result = "SUCCESS" if ok else "FAIL"
        detail = (desc, code or "0", "ok" if ok else "upgrade failed")
        return (_SW_RESULT % (ids, *versions, result, seconds, *detail)).encode()
    return (_FW_RESULT % (ids, *versions, "SUCCESS" if ok else "FAIL", desc, seconds)).encode()


def _task(task: Task, rng: random.Random) -> list[Delivery]:
    """4 to 6 deliveries: Waitting, Processing (one or two), a final status, maybe a re-delivery;
    a fifth of the time the last Processing arrives after the final status (a late event)."""
    at = task.start_us
    plan = [(at, "Waitting")]
    for _ in range(2 if rng.random() < 0.3 else 1):
        at += rng.randint(5 * SECOND, 600 * SECOND)
        plan.append((at, "Processing"))
    final = rng.choices([f[0] for f in FINALS], [f[1] for f in FINALS])[0]
    plan.append((at + rng.randint(300 * SECOND, 3600 * SECOND), final))
    out = []
    for happened, status in plan:
        request = f"{rng.getrandbits(128):032x}"
        request = f"{request[:8]}-{request[8:12]}-{request[12:16]}-{request[16:20]}-{request[20:]}"
        body = (
            _TASK
            % (
                _event_time(happened),
                _event_time_ms(happened),
                request,
                task.app_id,
                task.task_id,
                task.task_type,
                status,
                TASK_DESC[status],
            )
        ).encode()
        out.append((happened + rng.randint(SECOND // 20, 2 * SECOND), body))
    if rng.random() < 0.2:  # the last Processing is delivered after the final status
        last_processing = len(out) - 2
        final_at = out[-1][0]
        out[last_processing] = (final_at + rng.randint(5 * SECOND, 300 * SECOND), out[-2][1])
    if rng.random() < 0.5:  # a re-delivery of one of them, the same body
        again = out[rng.randrange(len(out))]
        out.append((again[0] + rng.randint(SECOND, 60 * SECOND), again[1]))
    return out


def _event_time(us: int) -> str:
    return datetime.fromtimestamp(us / SECOND, UTC).strftime("%Y%m%dT%H%M%SZ")


def _event_time_ms(us: int) -> str:
    moment = datetime.fromtimestamp(us / SECOND, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"
