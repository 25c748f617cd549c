"""Every rule of a device track's machine: moves, retries, illegal moves, results."""

from __future__ import annotations

import itertools

import pytest

from tests.unit.builders import T0, at, fw, fw_result, sw, sw_result
from tracker.domain.device import VALID_MOVES, evolve_track

STATES = ("idle", "downloading", "downloaded", "updating")
LEGAL = {
    ("idle", "downloading"),
    ("downloading", "downloaded"),
    ("downloaded", "updating"),
    ("updating", "idle"),
    ("downloading", "idle"),
    ("downloaded", "idle"),
}


def test_the_legal_moves_are_exactly_those_of_the_design():
    assert set(VALID_MOVES) == LEGAL


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize("to_state", STATES)
def test_the_first_observation_may_be_any_state(make, to_state):
    track, transition = evolve_track(None, at(1, make(to_state)))
    assert track.state == to_state
    assert (transition.from_state, transition.to_state, transition.valid) == (None, to_state, True)
    assert transition.track == ("software" if make is sw else "firmware")


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states(make, before, after):
    track, _ = evolve_track(None, at(1, make(before)))
    changed, transition = evolve_track(track, at(2, make(after)))
    if before == after:
        assert (changed, transition) == (None, None)  # a retry: nothing at all
        return
    assert changed.state == after  # the state follows the device, legal or not
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert (transition.position, transition.received_at) == (2, at(2, None).received_at)


def test_firmware_steps_map_to_states():
    track = None
    for position, step_state in enumerate(
        ["idle", "downloading", "downloaded", "updating", "idle"], 1
    ):
        track, transition = evolve_track(track, at(position, fw(step_state)))
        assert (track.state, transition.valid) == (step_state, True)


def test_same_state_under_a_new_operation_changes_ids_but_records_no_transition():
    track, _ = evolve_track(None, at(1, sw("idle", op="op-1")))
    changed, transition = evolve_track(track, at(5, sw("idle", op="op-2", sub="sub-9")))
    assert transition is None
    assert (changed.operation_id, changed.sub_operation_id) == ("op-2", "sub-9")
    assert changed.state_since == track.state_since  # still idle since the first report
    assert (changed.last_position, changed.updated_at) == (5, at(5, None).received_at)


def test_times_come_from_the_events_only():
    track, _ = evolve_track(None, at(3, sw("downloading")))
    assert track.updated_at == track.state_since == T0.replace(second=3)
    track, _ = evolve_track(track, at(7, sw("downloaded")))
    assert track.state_since == T0.replace(second=7)


@pytest.mark.parametrize(("make", "track_name"), [(sw_result, "software"), (fw_result, "firmware")])
def test_a_success_sets_the_version_and_a_failure_keeps_it(make, track_name):
    track, _ = evolve_track(None, at(1, make("SUCCESS", cur="2.0", target="2.0")))
    assert (track.track, track.state, track.version) == (track_name, None, "2.0")
    assert track.last_result.result == "SUCCESS"
    assert track.last_result.anomaly is False
    failed, transition = evolve_track(track, at(2, make("FAIL", cur="2.0", target="3.0")))
    assert transition is None
    assert failed.version == "2.0"
    assert (failed.last_result.result, failed.last_result.target_version) == ("FAIL", "3.0")
    assert failed.last_result.anomaly is False


def test_a_success_below_target_is_an_anomaly():
    track, _ = evolve_track(None, at(1, sw_result("SUCCESS", cur="1.0", target="2.0")))
    assert track.last_result.anomaly is True
    assert track.version == "1.0"


def test_result_fields():
    track, _ = evolve_track(None, at(4, sw_result("FAIL", cur="1.0", target="2.0", source="1.0")))
    r = track.last_result
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        "E42",
        "done",
        "desc",
        "60",
    )
    assert (r.source_version, r.current_version, r.position) == ("1.0", "1.0", 4)
    track, _ = evolve_track(None, at(4, fw_result("FAIL")))
    r = track.last_result
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        None,
        "fw done",
        None,
        60,
    )


def test_the_same_result_again_is_a_retry():
    track, _ = evolve_track(None, at(1, sw_result()))
    assert evolve_track(track, at(2, sw_result())) == (None, None)


def test_a_result_keeps_the_state():
    track, _ = evolve_track(None, at(1, sw("updating")))
    track, _ = evolve_track(track, at(2, sw_result()))
    assert (track.state, track.state_since, track.last_position) == (
        "updating",
        T0.replace(second=1),
        2,
    )
