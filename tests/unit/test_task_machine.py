"""Every rule of the batch task machine: moves, time order, late events, retries."""

from __future__ import annotations

import itertools

import pytest

from tests.unit.builders import at, task
from tracker.domain.task import VALID_MOVES, evolve_task

STATUSES = ("Waitting", "Processing", "Success", "PartialSuccess", "Fail", "Stopped")
LEGAL = {
    ("Waitting", "Processing"),
    ("Waitting", "Stopped"),
    ("Waitting", "Fail"),
    ("Processing", "Success"),
    ("Processing", "PartialSuccess"),
    ("Processing", "Fail"),
    ("Processing", "Stopped"),
}


def test_the_legal_moves_are_exactly_those_of_the_design():
    assert set(VALID_MOVES) == LEGAL


@pytest.mark.parametrize("status", STATUSES)
def test_the_first_event_may_be_any_status(status):
    state, transition = evolve_task(None, at(1, task(status)))
    assert state.status == status
    assert (transition.from_status, transition.valid, transition.applied) == (None, True, True)


@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATUSES, STATUSES)))
def test_every_pair_of_statuses_in_time_order(before, after):
    state, _ = evolve_task(None, at(1, task(before, second=10, request_id="r1")))
    changed, transition = evolve_task(state, at(2, task(after, second=20, request_id="r2")))
    assert changed.status == after
    if before == after:
        assert transition is None
        return
    assert (transition.from_status, transition.to_status) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert transition.applied is True


def test_a_late_event_is_recorded_but_not_applied():
    state, _ = evolve_task(None, at(1, task("Waitting", second=10, request_id="r1")))
    state, _ = evolve_task(state, at(2, task("Processing", second=30, request_id="r2")))
    changed, transition = evolve_task(state, at(3, task("Stopped", second=20, request_id="r3")))
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


def test_a_redelivered_request_id_changes_nothing():
    state, _ = evolve_task(None, at(1, task("Waitting", request_id="same")))
    assert evolve_task(state, at(2, task("Waitting", request_id="same"))) == (None, None)


def test_without_request_id_the_same_time_and_status_is_a_retry():
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id=None)))
    assert evolve_task(state, at(2, task("Processing", second=5, request_id=None))) == (None, None)
    changed, transition = evolve_task(state, at(3, task("Success", second=9, request_id=None)))
    assert (changed.status, transition.valid) == ("Success", True)


def test_same_status_later_updates_description_without_a_transition():
    state, _ = evolve_task(None, at(1, task("Processing", second=5, request_id="a", desc="10%")))
    changed, transition = evolve_task(
        state, at(2, task("Processing", second=6, request_id="b", desc="50%"))
    )
    assert transition is None
    assert (changed.status_desc, changed.request_id, changed.last_position) == ("50%", "b", 2)


def test_equal_times_are_ordered_by_position():
    state, _ = evolve_task(None, at(1, task("Waitting", second=5, request_id="a")))
    changed, transition = evolve_task(state, at(2, task("Processing", second=5, request_id="b")))
    assert (changed.status, transition.applied) == ("Processing", True)


def test_event_time_is_used_when_milliseconds_are_absent():
    state, _ = evolve_task(None, at(1, task("Processing", second=30, request_id="a", ms=False)))
    changed, transition = evolve_task(
        state, at(2, task("Waitting", second=10, request_id="b", ms=True))
    )
    assert (changed.status, transition.applied) == ("Processing", False)
