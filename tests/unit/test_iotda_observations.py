"""The reconciler's pure parts: cutting an answer into events byte for byte, appending only what
the log does not say, and folding observations into tasks and members in any order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, get_args

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import T0, at, task
from tracker.domain.notifications import (
    BatchTaskObserved,
    Notification,
    SubtaskObserved,
    SubtaskStatus,
)
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.domain.subtask import VALID_MOVES, evolve_subtask, is_valid_move
from tracker.domain.task import Progress, evolve_task, observe_task
from tracker.iotda.observe import (
    Asked,
    HeldMember,
    HeldTask,
    Malformed,
    elements,
    read,
    spans,
)

PROGRESS = {
    "total": 2,
    "processing": 1,
    "success": 0,
    "fail": 1,
    "waitting": 0,
    "fail_wait_retry": 0,
    "stopped": 0,
    "removed": 0,
}


def answer(
    *details: dict[str, Any], status: str = "Processing", kind: str = "softwareUpgrade"
) -> bytes:
    """ShowBatchTask's answer, written with odd spacing and escapes as a server may."""
    batchtask = {
        "task_id": "t-1",
        "task_name": "r\u00e9sum\u00e9",
        "task_type": kind,
        "status": status,
        "task_progress": PROGRESS,
        "create_time": "20261207T080000Z",
    }
    body = json.dumps(
        {
            "batchtask": batchtask,
            "task_details": list(details),
            "page": {"count": 2, "marker": "m"},
        },
        indent=1,
        ensure_ascii=True,
    )
    return body.encode()


DEV1 = {"target": "d-1", "status": "Processing", "output": None, "error": None}
DEV2 = {
    "target": "d-2",
    "status": "Fail",
    "error": {"error_code": "E1", "error_msg": "t\u00e9l\u00e9"},
}


def asked(raw: bytes, second: int = 0) -> Asked:
    return Asked(raw, T0 + timedelta(seconds=second), "GET /v5/iot/p/batchtasks/t-1", "app-1")


def test_spans_find_each_member_and_element_exactly() -> None:
    text = ' { "a" : [ 1 , {"b": "]}"} ,"\\u00e9" ] , "c":null }'
    where = spans(text)
    assert text[slice(*where["a"])] == '[ 1 , {"b": "]}"} ,"\\u00e9" ]'
    assert text[slice(*where["c"])] == "null"
    cut = [text[s:e] for s, e in elements(text, where["a"][0])]
    assert cut == ["1", '{"b": "]}"}', '"\\u00e9"']
    with pytest.raises(Malformed):
        spans("[1, 2]")


def test_each_event_carries_its_part_of_the_answer_byte_for_byte() -> None:
    raw = answer(DEV1, DEV2)
    found = read(asked(raw), None, {}, with_task=True)

    assert [e.event_type for e in found.events] == [
        "iotda.batchtask.observed",
        "iotda.subtask.observed",
        "iotda.subtask.observed",
    ]
    for event in found.events:
        key = b'"detail":' if event.event_type.endswith("subtask.observed") else b'"batchtask":'
        part = event.raw[event.raw.index(key) + len(key) : -1]
        assert part in raw
        assert orjson.loads(event.raw)["observed_at"] == T0.isoformat()
    assert [e.stream_id for e in found.events] == ["t-1", "d-1", "d-2"]
    assert (found.status, found.marker, found.matched, found.targets) == (
        "Processing",
        "m",
        2,
        ["d-1", "d-2"],
    )
    assert found.progress == Progress(**PROGRESS)


def test_only_what_the_log_does_not_say_is_appended() -> None:
    raw = answer(DEV1, DEV2)
    held_task = HeldTask("Processing", Progress(**PROGRESS))
    held = {"d-1": HeldMember("Processing", None, None), "d-2": HeldMember("Fail", "E1", "télé")}

    assert read(asked(raw), held_task, held, with_task=True).events == []
    moved = read(asked(raw), held_task._replace(status="Waitting"), held, with_task=True)
    assert [e.event_type for e in moved.events] == ["iotda.batchtask.observed"]
    counted = read(asked(raw), held_task._replace(progress=None), held, with_task=False)
    assert counted.events == []  # the task is looked at only when asked (a visit's head)
    new_error = {**held, "d-2": HeldMember("Fail", "E0", "télé")}
    assert [e.stream_id for e in read(asked(raw), held_task, new_error, with_task=True).events] == [
        "d-2"
    ]


def test_an_entry_the_models_refuse_is_skipped_not_appended() -> None:
    odd = {"target": "d-3", "status": "Exploded"}
    found = read(asked(answer(DEV1, odd)), None, {}, with_task=False)
    assert [e.stream_id for e in found.events] == ["d-1"]
    assert found.skipped == 1


def test_a_task_of_another_type_is_logged_but_its_devices_are_not_read() -> None:
    found = read(asked(answer(DEV1, kind="createCommands")), None, {}, with_task=True)
    assert [e.event_type for e in found.events] == ["iotda.batchtask.observed"]
    assert found.events[0].notification is None  # logged in its stream, not projected


def test_an_answer_that_is_not_showbatchtask_s_is_malformed() -> None:
    with pytest.raises(Malformed):
        read(asked(b'{"error_code": "x"}'), None, {}, with_task=True)
    with pytest.raises(Malformed):
        read(asked(b"\xff"), None, {}, with_task=True)


def subtask(
    status: str, second: int, error: tuple[str, str] | None = None
) -> Recorded[SubtaskObserved]:
    detail: dict[str, Any] = {"target": "d-1", "status": status}
    if error is not None:
        detail["error"] = {"error_code": error[0], "error_msg": error[1]}
    body = {
        "observed_at": (T0 + timedelta(seconds=second)).isoformat(),
        "task_id": "t-1",
        "task_type": "firmwareUpgrade",
        "app_id": None,
        "detail": detail,
    }
    return at(second, SubtaskObserved.model_validate_json(orjson.dumps(body)))


def test_a_subtask_s_member_and_trail() -> None:
    member, first = evolve_subtask(None, subtask("Waitting", 1))
    assert member is not None
    assert first is not None
    assert (member.state, member.track, member.app_id, member.state_since) == (
        "Waitting",
        "firmware",
        "",
        T0 + timedelta(seconds=1),
    )
    assert (first.from_state, first.to_state, first.valid, first.kind) == (
        None,
        "Waitting",
        True,
        "subtask",
    )
    assert evolve_subtask(member, subtask("Waitting", 2)) == (None, None)  # a repeat
    failed, move = evolve_subtask(member, subtask("Fail", 3, ("E1", "gone")))
    assert failed is not None
    assert move is not None
    assert (failed.result, failed.error_code, failed.result_desc) == ("FAIL", "E1", "gone")
    assert move.valid  # Waitting -> Fail: Processing came and went between two reads
    assert move.result is not None
    assert move.result.result == "FAIL"
    reworded, _ = evolve_subtask(failed, subtask("Fail", 4, ("E1", "gone for good")))
    assert reworded is not None
    assert reworded.state_since == failed.state_since  # the same status since
    succeeded, _ = evolve_subtask(failed, subtask("Success", 5))
    assert succeeded is not None
    _, after_success = evolve_subtask(succeeded, subtask("Processing", 6))
    assert after_success is not None
    assert not after_success.valid  # nothing leads out of Success


@pytest.mark.parametrize("before", get_args(SubtaskStatus))
@pytest.mark.parametrize("after", get_args(SubtaskStatus))
def test_an_observed_move_is_valid_when_the_allowed_moves_lead_there(
    before: SubtaskStatus, after: SubtaskStatus
) -> None:
    """A read sees a device now and then: a move is valid when some path of allowed moves leads
    from one status to the other, and only Success and Removed lead nowhere."""
    reached: set[str] = set()  # in one or more allowed moves
    frontier = {before}
    while frontier:
        frontier = {b for a, b in VALID_MOVES if a in frontier} - reached
        reached |= frontier
    assert is_valid_move(before, after) == (after in reached)
    assert is_valid_move(before, after) == (before not in ("Success", "Removed"))


def observation(
    status: str, second: int, progress: dict[str, int] | None = None
) -> BatchTaskObserved:
    body = {
        "observed_at": (T0 + timedelta(seconds=second)).isoformat(),
        "app_id": None,
        "batchtask": {
            "task_id": "t-1",
            "task_type": "softwareUpgrade",
            "status": status,
            "task_progress": progress,
        },
    }
    return BatchTaskObserved.model_validate_json(orjson.dumps(body))


def test_an_observed_status_no_push_told_is_a_transition_from_reconciliation() -> None:
    pushed, _ = evolve_task(None, at(1, task("Processing", second=1)))
    seen, move = observe_task(pushed, at(2, observation("Success", 30, PROGRESS)))
    assert seen is not None
    assert move is not None
    assert (seen.status, seen.pushed, seen.observed) == (
        "Success",
        frozenset({"Processing"}),
        frozenset({"Success"}),
    )
    assert (move.from_status, move.to_status, move.source) == (
        "Processing",
        "Success",
        "reconciliation",
    )
    assert seen.progress == Progress(**PROGRESS)
    late, late_move = evolve_task(seen, at(3, task("Success", second=20, request_id="late")))
    assert late is not None
    assert late.pushed == frozenset({"Processing", "Success"})
    assert late_move is not None
    assert not late_move.applied  # pushed before it was seen: the status stays the observation's


STATUSES = ("Waitting", "Processing", "Success", "Fail", "Stopped")


@st.composite
def histories(draw: st.DrawFn) -> list[Notification]:
    """Pushes and observations of one task, at distinct or equal times, any status."""
    events: list[Notification] = []
    for i in range(draw(st.integers(1, 6))):
        status = draw(st.sampled_from(STATUSES))
        second = draw(st.integers(0, 5))
        if draw(st.booleans()):
            events.append(task(status, second=second, request_id=f"r{i}"))  # type: ignore[arg-type]
        else:
            total = draw(st.integers(0, 9))
            progress = draw(st.none() | st.just({**PROGRESS, "total": total}))
            events.append(observation(status, second, progress))
    return events


@settings(max_examples=150, deadline=None)
@given(histories(), st.randoms(use_true_random=False))
def test_every_order_of_pushes_and_observations_gives_one_task(
    history: list[Notification],
    random: Any,
) -> None:
    def fold(order: list[Notification]) -> object:
        rows = Projection(changes=False)
        for position, n in enumerate(order, 1):
            rows.apply(at(position, n))
        (only,) = rows.tasks.values()
        return only._replace(last_position=0, updated_at=T0)  # arrival facts

    shuffled = list(history)
    random.shuffle(shuffled)
    assert fold(shuffled) == fold(history)
