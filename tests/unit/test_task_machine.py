"""Every rule of the batch task machine: moves, time order, late events, retries."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import get_args

import pytest

from tests.unit.builders import T0, at, task
from tracker.domain.notifications import BatchTaskUpdated, TaskStatus
from tracker.domain.task import VALID_MOVES, evolve_task

STATUSES: tuple[TaskStatus, ...] = (
    "Initializing",
    "Waitting",
    "Processing",
    "Stopping",
    "Success",
    "PartialSuccess",
    "Fail",
    "Stopped",
)
LEGAL: set[tuple[TaskStatus, TaskStatus]] = {
    ("Initializing", "Waitting"),
    ("Waitting", "Processing"),
    ("Waitting", "Stopped"),
    ("Waitting", "Fail"),
    ("Processing", "Success"),
    ("Processing", "PartialSuccess"),
    ("Processing", "Fail"),
    ("Processing", "Stopped"),
    ("Processing", "Stopping"),
    ("Stopping", "Stopped"),
    ("Fail", "Processing"),  # retried
    ("PartialSuccess", "Processing"),  # retried
}
# Where each status comes in a task's life: what orders two events of the same platform time.
RANK: dict[TaskStatus, int] = {
    "Initializing": 0,
    "Waitting": 1,
    "Processing": 2,
    "Stopping": 3,
    "Success": 4,
    "PartialSuccess": 4,
    "Fail": 4,
    "Stopped": 4,
}


def test_the_statuses_are_those_the_platform_sends() -> None:
    assert set(get_args(TaskStatus)) == set(STATUSES)


def test_the_legal_moves_are_exactly_those_of_the_design() -> None:
    assert set(VALID_MOVES) == LEGAL


@pytest.mark.parametrize("status", STATUSES)
def test_the_first_event_may_be_any_status(status: TaskStatus) -> None:
    state, transition = evolve_task(None, at(1, task(status)))
    assert state is not None
    assert transition is not None
    assert state.status == status
    assert (transition.from_status, transition.valid, transition.applied) == (None, True, True)


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses_in_time_order(before: TaskStatus, after: TaskStatus) -> None:
    state, _ = evolve_task(None, at(1, task(before, second=10, request_id="r1")))
    changed, transition = evolve_task(state, at(2, task(after, second=20, request_id="r2")))
    assert changed is not None
    assert changed.status == after
    if before == after:
        assert transition is None
        return
    assert transition is not None
    assert (transition.from_status, transition.to_status) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert transition.applied is True


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses_at_the_same_time_is_ordered_by_lifecycle(
    before: TaskStatus, after: TaskStatus
) -> None:
    state, _ = evolve_task(None, at(1, task(before, second=10, request_id="r1")))
    changed, transition = evolve_task(state, at(2, task(after, second=10, request_id="r2")))
    assert changed is not None
    # Earlier in the lifecycle, or equal and first by name: the status stays (any order).
    kept = (RANK[after], after) < (RANK[before], before)
    if kept:
        assert changed.status == before
        assert transition is not None
        assert (transition.from_status, transition.to_status) == (before, after)
        assert transition.valid is ((before, after) in LEGAL)  # a retry is valid, yet late
        assert transition.applied is False
        return
    assert changed.status == after
    if before == after:
        assert transition is None
        return
    assert transition is not None
    assert (transition.from_status, transition.to_status) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert transition.applied is True


def test_a_retried_task_runs_again() -> None:
    state, _ = evolve_task(None, at(1, task("Processing", second=10, request_id="r1")))
    state, _ = evolve_task(state, at(2, task("PartialSuccess", second=20, request_id="r2")))
    state, transition = evolve_task(state, at(3, task("Processing", second=30, request_id="r3")))
    assert state is not None
    assert transition is not None
    assert (state.status, transition.valid, transition.applied) == ("Processing", True, True)
    state, transition = evolve_task(state, at(4, task("Fail", second=40, request_id="r4")))
    state, transition = evolve_task(state, at(5, task("Processing", second=50, request_id="r5")))
    assert state is not None
    assert transition is not None
    assert (state.status, transition.valid, transition.applied) == ("Processing", True, True)


def test_a_stopped_task_goes_through_stopping() -> None:
    state, _ = evolve_task(None, at(1, task("Initializing", second=1, request_id="r1")))
    statuses: list[TaskStatus] = ["Waitting", "Processing", "Stopping", "Stopped"]
    for position, status in enumerate(statuses, 2):
        state, transition = evolve_task(
            state, at(position, task(status, second=position, request_id=f"r{position}"))
        )
        assert state is not None
        assert transition is not None
        assert (state.status, transition.valid, transition.applied) == (status, True, True)


def test_a_late_event_is_recorded_but_not_applied() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", second=10, request_id="r1")))
    state, _ = evolve_task(state, at(2, task("Processing", second=30, request_id="r2")))
    assert state is not None
    changed, transition = evolve_task(state, at(3, task("Stopped", second=20, request_id="r3")))
    assert changed is not None
    assert transition is not None
    assert changed.status == "Processing"
    assert (changed.last_position, changed.event_time) == (2, state.event_time)
    assert (transition.from_status, transition.to_status, transition.applied) == (
        "Processing",
        "Stopped",
        False,
    )
    assert transition.position == 3
    # And a re-delivery of the late event adds nothing more.
    assert evolve_task(changed, at(4, task("Stopped", second=20, request_id="r3"))) == (None, None)


def test_a_redelivered_request_id_changes_nothing() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", request_id="same")))
    assert evolve_task(state, at(2, task("Waitting", request_id="same"))) == (None, None)


def test_without_request_id_the_same_time_and_status_is_a_retry() -> None:
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id=None)))
    assert evolve_task(state, at(2, task("Processing", second=5, request_id=None))) == (None, None)
    changed, transition = evolve_task(state, at(3, task("Success", second=9, request_id=None)))
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.valid) == ("Success", True)


def test_same_status_later_updates_description_without_a_transition() -> None:
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id="a", desc="10%")))
    changed, transition = evolve_task(
        state, at(2, task("Processing", second=6, request_id="b", desc="50%"))
    )
    assert transition is None
    assert changed is not None
    assert (changed.status_desc, changed.request_id, changed.last_position) == ("50%", "b", 2)


def test_at_equal_times_a_later_status_in_the_lifecycle_applies() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", second=5, request_id="a")))
    changed, transition = evolve_task(state, at(2, task("Processing", second=5, request_id="b")))
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.applied) == ("Processing", True)


def test_at_equal_times_an_earlier_status_in_the_lifecycle_is_late() -> None:
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id="a")))
    changed, transition = evolve_task(state, at(2, task("Waitting", second=5, request_id="b")))
    assert changed is not None
    assert transition is not None
    assert (changed.status, changed.last_position) == ("Processing", 1)
    assert (transition.from_status, transition.to_status) == ("Processing", "Waitting")
    assert transition.applied is False


def test_equal_times_and_equal_ranks_are_ordered_by_content_not_arrival() -> None:
    pairs: tuple[tuple[TaskStatus, TaskStatus], ...] = (("Success", "Fail"), ("Fail", "Success"))
    for first, second in pairs:
        state, _ = evolve_task(None, at(1, task(first, second=5, request_id="a")))
        changed, _ = evolve_task(state, at(2, task(second, second=5, request_id="b")))
        assert changed is not None
        assert changed.status == "Success"  # the greater name, whichever came first


@pytest.mark.parametrize("ms", [True, False], ids=["milliseconds", "seconds"])
def test_a_retry_stamped_in_the_second_of_the_failure_comes_after_it(ms: bool) -> None:
    # The first run at second 3 fails at 10; the retry's Processing is stamped 10 too (to the
    # millisecond, .000 both: the clock cannot tell them).
    events = [
        task("Processing", second=3, request_id="run", ms=ms),
        task("Fail", second=10, request_id="fail", ms=ms),
        task("Processing", second=10, request_id="retry", ms=ms),
    ]
    for order in itertools.permutations(events):
        state = None
        for position, event in enumerate(order, 1):
            state, _ = evolve_task(state, at(position, event))
        assert state is not None
        assert (state.status, state.request_id) == ("Processing", "retry")


def test_a_task_that_fails_in_the_second_it_starts_reads_fail() -> None:
    events = [
        task("Processing", second=10, request_id="run"),
        task("Fail", second=10, request_id="f"),
    ]
    for order in itertools.permutations(events):
        state = None
        for position, event in enumerate(order, 1):
            state, _ = evolve_task(state, at(position, event))
        assert state is not None
        assert state.status == "Fail"


def test_every_order_of_a_task_s_events_gives_one_status() -> None:
    life = [
        task("Initializing", second=1, request_id="a", ms=False),
        task("Waitting", second=1, request_id="b"),
        task("Processing", second=2, request_id="c", millis=300),
        task("PartialSuccess", second=9, request_id="d", ms=False),
        task("Processing", second=9, request_id="e", millis=700),
        task("Stopping", second=9, request_id="f", millis=800),
    ]
    outcomes = set()
    for order in itertools.permutations(life):
        state = None
        for position, event in enumerate(order, 1):
            state, _ = evolve_task(state, at(position, event))
        assert state is not None
        outcomes.add(state._replace(last_position=0, updated_at=T0))  # arrival facts
    assert len(outcomes) == 1
    (only,) = outcomes
    assert (only.status, only.first_run_at is not None) == ("Stopping", True)


def test_event_time_is_used_when_milliseconds_are_absent() -> None:
    state, _ = evolve_task(None, at(1, task("Processing", second=30, request_id="a", ms=False)))
    changed, transition = evolve_task(
        state, at(2, task("Waitting", second=10, request_id="b", ms=True))
    )
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.applied) == ("Processing", False)


def test_a_time_to_the_second_records_that_it_is_not_precise() -> None:
    coarse, _ = evolve_task(None, at(1, task("Waitting", second=5, ms=False)))
    fine, _ = evolve_task(None, at(1, task("Waitting", second=5, millis=500)))
    assert coarse is not None
    assert fine is not None
    assert (coarse.event_time_precise, fine.event_time_precise) == (False, True)
    assert fine.event_time == coarse.event_time.replace(microsecond=500_000)


def test_a_millisecond_time_within_the_second_of_a_coarse_one_is_a_tie() -> None:
    # 01:02:03Z may have been 01:02:03.900: the .500 event is not known to be later.
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id="a", ms=False)))
    changed, transition = evolve_task(
        state, at(2, task("Waitting", second=5, millis=500, request_id="b"))
    )
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.applied) == ("Processing", False)


def test_a_coarse_time_within_the_second_of_a_millisecond_one_is_a_tie() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", second=5, millis=500, request_id="a")))
    changed, transition = evolve_task(
        state, at(2, task("Processing", second=5, request_id="b", ms=False))
    )
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.applied) == ("Processing", True)
    assert changed.event_time_precise is False


def test_two_millisecond_times_compare_exactly() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", second=5, millis=500, request_id="a")))
    changed, transition = evolve_task(
        state, at(2, task("Processing", second=5, millis=200, request_id="b"))
    )
    assert changed is not None
    assert transition is not None
    assert (changed.status, transition.applied) == ("Waitting", False)
    later, transition = evolve_task(
        state, at(3, task("Processing", second=5, millis=700, request_id="c"))
    )
    assert later is not None
    assert transition is not None
    assert (later.status, transition.applied) == ("Processing", True)


# Once a task has run in an earlier second, a Processing in its last second is a retry.
RETRY_RANK: dict[TaskStatus, int] = {
    "Initializing": 0,
    "Waitting": 1,
    "Fail": 2,
    "PartialSuccess": 2,
    "Processing": 3,
    "Stopping": 4,
    "Success": 5,
    "Stopped": 5,
}


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses_in_one_second_after_a_run(
    before: TaskStatus, after: TaskStatus
) -> None:
    ran, _ = evolve_task(None, at(1, task("Processing", second=1, request_id="r0", ms=False)))
    state, _ = evolve_task(ran, at(2, task(before, second=10, request_id="r1", ms=False)))
    state, _ = evolve_task(state, at(3, task(after, second=10, request_id="r2", ms=False)))
    assert state is not None
    expected = max((before, after), key=lambda s: (RETRY_RANK[s], s))
    assert state.status == expected


@pytest.mark.parametrize("reverse", [False, True])
def test_a_task_s_application_and_type_are_the_least_its_events_name(reverse: bool) -> None:
    one = task("Waitting", second=1, request_id="a")
    other = BatchTaskUpdated.model_validate(
        {
            **task("Processing", second=2, request_id="b").model_dump(),
            "notify_data": {
                "body": {
                    "app_id": "app-0",
                    "task_id": "t-1",
                    "task_type": "firmwareUpgrade",
                    "status": "Processing",
                }
            },
        }
    )
    state = None
    for position, event in enumerate((other, one) if reverse else (one, other), 1):
        state, _ = evolve_task(state, at(position, event))
    assert state is not None
    assert (state.app_id, state.task_type) == ("app-0", "firmwareUpgrade")


def test_a_task_s_updated_at_never_moves_back() -> None:
    state, _ = evolve_task(None, at(1, task("Waitting", second=1, request_id="a"), second=50))
    state, _ = evolve_task(state, at(2, task("Processing", second=2, request_id="b"), second=20))
    assert state is not None
    assert (state.status, state.updated_at) == ("Processing", T0 + timedelta(seconds=50))
