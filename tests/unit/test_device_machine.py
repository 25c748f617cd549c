"""Every rule of a device track's machine: moves, retries, illegal moves, late re-pushes,
readmitted deliveries, results."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from tests.unit.builders import (
    T0,
    ResultBuilder,
    StateBuilder,
    at,
    fw,
    fw_result,
    sw,
    sw_result,
)
from tracker.domain.device import VALID_MOVES, TrackState, evolve_track, is_settled
from tracker.domain.notifications import DeviceNotification, Result, Track, UpgradeState

STATES: tuple[UpgradeState, ...] = ("idle", "downloading", "downloaded", "updating")
LEGAL: set[tuple[UpgradeState, UpgradeState]] = {
    ("idle", "downloading"),
    ("downloading", "downloaded"),
    ("downloaded", "updating"),
    ("updating", "idle"),
    ("downloading", "idle"),
    ("downloaded", "idle"),
    ("updating", "downloaded"),  # the update failed, the package is still there
}
# Within one sub-operation: a non-idle state earlier in the lifecycle than the one held, and not
# a legal move, is the platform pushing a failed delivery again.
LATE_REPUSHES: set[tuple[UpgradeState, UpgradeState]] = {
    ("downloaded", "downloading"),
    ("updating", "downloading"),
}


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def fold(*notifications: DeviceNotification) -> TrackState | None:
    """The track after the notifications, received at positions (and seconds) 1, 2, ..."""
    track: TrackState | None = None
    for position, notification in enumerate(notifications, 1):
        changed, _ = evolve_track(track, at(position, notification))
        track = changed or track
    return track


def test_the_legal_moves_are_exactly_those_of_the_design() -> None:
    assert set(VALID_MOVES) == LEGAL


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize("to_state", STATES)
def test_the_first_observation_may_be_any_state(make: StateBuilder, to_state: UpgradeState) -> None:
    track, transition = evolve_track(None, at(1, make(to_state)))
    assert track is not None
    assert transition is not None
    assert track.state == to_state
    assert (transition.from_state, transition.to_state, transition.valid) == (None, to_state, True)
    assert transition.track == ("software" if make is sw else "firmware")
    assert (transition.kind, transition.applied, transition.result) == ("state", True, None)


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_within_a_sub_operation(
    make: StateBuilder, before: UpgradeState, after: UpgradeState
) -> None:
    track, _ = evolve_track(None, at(1, make(before)))
    assert track is not None
    changed, transition = evolve_track(track, at(2, make(after)))  # the same op-1 / sub-1
    if before == after:
        assert (changed, transition) == (None, None)  # a retry: nothing at all
        return
    assert changed is not None
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert (transition.position, transition.received_at) == (2, seconds(2))
    if (before, after) in LATE_REPUSHES:
        assert changed == track._replace(unapplied=after)  # it keeps what it holds...
        assert transition.applied is False
        # ...and the platform's retry of the late report records nothing more.
        assert evolve_track(changed, at(3, make(after))) == (None, None)
    else:
        assert changed.state == after  # the state follows the device, legal or not
        assert transition.applied is True


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_across_sub_operations(
    make: StateBuilder, before: UpgradeState, after: UpgradeState
) -> None:
    track, _ = evolve_track(None, at(1, make(before, sub="sub-1")))
    changed, transition = evolve_track(track, at(2, make(after, sub="sub-2")))
    assert changed is not None
    assert (changed.state, changed.sub_operation_id) == (after, "sub-2")  # always applies
    if before == after:
        assert transition is None  # the same state under new ids
        return
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert transition.applied is True


def test_an_update_that_failed_goes_back_to_downloaded() -> None:
    track = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    changed, transition = evolve_track(track, at(4, sw("downloaded")))
    assert changed is not None
    assert transition is not None
    assert changed.state == "downloaded"
    assert (transition.from_state, transition.to_state) == ("updating", "downloaded")
    assert (transition.valid, transition.applied) == (True, True)


def test_a_late_re_push_is_recorded_but_not_applied() -> None:
    track = fold(sw("downloading"), sw("downloaded"))
    assert track is not None
    changed, transition = evolve_track(track, at(3, sw("downloading")))
    assert transition is not None
    assert changed == track._replace(unapplied="downloading")  # still downloaded, since second 2
    assert (transition.from_state, transition.to_state) == ("downloaded", "downloading")
    assert (transition.valid, transition.applied, transition.position) == (False, False, 3)
    # The device goes on from the state the track held.
    moved, transition = evolve_track(track, at(4, sw("updating")))
    assert moved is not None
    assert transition is not None
    assert (moved.state, transition.from_state, transition.valid) == (
        "updating",
        "downloaded",
        True,
    )


def test_an_earlier_state_under_a_new_operation_applies() -> None:
    track = fold(sw("downloaded", op="op-1", sub="sub-1"))
    changed, transition = evolve_track(track, at(2, sw("downloading", op="op-2", sub="sub-1")))
    assert changed is not None
    assert transition is not None
    assert (changed.state, changed.operation_id) == ("downloading", "op-2")
    assert (transition.valid, transition.applied) == (False, True)


def test_idle_always_applies() -> None:
    track = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    changed, transition = evolve_track(track, at(4, sw("idle")))
    assert changed is not None
    assert transition is not None
    assert (changed.state, transition.applied) == ("idle", True)


def test_firmware_steps_map_to_states() -> None:
    track: TrackState | None = None
    steps: list[UpgradeState] = ["idle", "downloading", "downloaded", "updating", "idle"]
    for position, step_state in enumerate(steps, 1):
        track, transition = evolve_track(track, at(position, fw(step_state)))
        assert track is not None
        assert transition is not None
        assert (track.state, transition.valid, transition.inconsistent) == (
            step_state,
            True,
            False,
        )


def test_a_step_and_step_desc_that_disagree_follow_the_step_and_are_inconsistent() -> None:
    report = fw("downloading", step_desc="idle")
    assert (report.step, report.stepDesc) == ("1", "idle")
    track, transition = evolve_track(None, at(1, report))
    assert track is not None
    assert transition is not None
    assert (track.state, transition.to_state) == ("downloading", "downloading")
    assert transition.inconsistent is True


@pytest.mark.parametrize("step_desc", ["downloading", "Downloading ", " DOWNLOADING", None])
def test_an_agreeing_or_missing_step_desc_is_consistent(step_desc: str | None) -> None:
    track, transition = evolve_track(None, at(1, fw("downloading", step_desc=step_desc)))
    assert track is not None
    assert transition is not None
    assert (track.state, transition.inconsistent) == ("downloading", False)


def test_a_software_report_is_consistent() -> None:
    _, transition = evolve_track(None, at(1, sw("downloading")))
    assert transition is not None
    assert transition.inconsistent is False


def test_same_state_under_a_new_operation_changes_ids_but_records_no_transition() -> None:
    track, _ = evolve_track(None, at(1, sw("idle", op="op-1")))
    assert track is not None
    changed, transition = evolve_track(track, at(5, sw("idle", op="op-2", sub="sub-9")))
    assert transition is None
    assert changed is not None
    assert (changed.operation_id, changed.sub_operation_id) == ("op-2", "sub-9")
    assert changed.state_since == track.state_since  # still idle since the first report
    assert (changed.last_position, changed.updated_at) == (5, seconds(5))


def test_times_come_from_the_events_only() -> None:
    track, _ = evolve_track(None, at(3, sw("downloading")))
    assert track is not None
    assert track.updated_at == track.state_since == T0.replace(second=3)
    track, _ = evolve_track(track, at(7, sw("downloaded")))
    assert track is not None
    assert track.state_since == T0.replace(second=7)


@pytest.mark.parametrize(("make", "track_name"), [(sw_result, "software"), (fw_result, "firmware")])
def test_every_result_sets_the_version_it_reports(make: ResultBuilder, track_name: Track) -> None:
    track, _ = evolve_track(None, at(1, make("SUCCESS", cur="2.0", target="2.0")))
    assert track is not None
    assert (track.track, track.state, track.version) == (track_name, None, "2.0")
    assert track.last_result is not None
    assert track.last_result.result == "SUCCESS"
    assert track.last_result.anomaly is False
    # A FAIL reports the version the device is left with, too.
    failed, transition = evolve_track(track, at(2, make("FAIL", cur="2.1", target="3.0")))
    assert transition is not None
    assert transition.kind == "result"
    assert failed is not None
    assert failed.version == "2.1"
    assert failed.last_result is not None
    assert (failed.last_result.result, failed.last_result.target_version) == ("FAIL", "3.0")
    assert failed.last_result.anomaly is False
    # A result without a current version keeps the one known.
    unknown, _ = evolve_track(failed, at(3, make("FAIL", cur=None, target="3.0")))
    assert unknown is not None
    assert unknown.last_result is not None
    assert (unknown.version, unknown.last_result.current_version) == ("2.1", None)


@pytest.mark.parametrize("make", [sw_result, fw_result], ids=["software", "firmware"])
def test_a_result_is_a_transition_of_its_own_kind(make: ResultBuilder) -> None:
    track, transition = evolve_track(None, at(1, make("FAIL", cur="1.0", target="2.0")))
    assert track is not None
    assert transition is not None
    assert (transition.kind, transition.from_state, transition.to_state) == ("result", None, None)
    assert (transition.valid, transition.applied, transition.inconsistent) == (True, True, False)
    assert transition.result == track.last_result
    assert (transition.position, transition.received_at) == (1, seconds(1))


def test_a_result_transition_keeps_the_state_of_the_track() -> None:
    track = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    changed, transition = evolve_track(track, at(4, sw_result()))
    assert changed is not None
    assert transition is not None
    assert (transition.kind, transition.from_state, transition.to_state) == (
        "result",
        "updating",
        "updating",
    )
    assert (transition.valid, transition.applied) == (True, True)
    assert transition.result == changed.last_result
    assert transition.result is not None
    assert transition.result.result == "SUCCESS"


def test_a_result_moves_the_track_to_its_operation() -> None:
    track = fold(sw("updating", op="op-1", sub="sub-1"))
    changed, transition = evolve_track(track, at(2, sw_result(op="op-2", sub="sub-2")))
    assert changed is not None
    assert transition is not None
    assert (changed.operation_id, changed.sub_operation_id) == ("op-2", "sub-2")
    assert (transition.operation_id, transition.sub_operation_id) == ("op-2", "sub-2")


@pytest.mark.parametrize(
    ("outcome", "cur", "target", "expected"),
    [
        ("SUCCESS", "1.0", "2.0", True),  # "success" below the target: a rollback?
        ("FAIL", "2.0", "2.0", True),  # "failed" yet on the target version
        ("SUCCESS", "2.0", "2.0", False),
        ("FAIL", "1.0", "2.0", False),
        ("SUCCESS", None, "2.0", None),  # cannot judge
        ("SUCCESS", "2.0", None, None),
        ("FAIL", None, "2.0", None),
        ("FAIL", "2.0", None, None),
    ],
)
@pytest.mark.parametrize("make", [sw_result, fw_result], ids=["software", "firmware"])
def test_a_result_that_contradicts_its_versions_is_an_anomaly(
    make: ResultBuilder,
    outcome: Result,
    cur: str | None,
    target: str | None,
    expected: bool | None,
) -> None:
    track, _ = evolve_track(None, at(1, make(outcome, cur=cur, target=target)))
    assert track is not None
    assert track.last_result is not None
    assert track.last_result.anomaly is expected


def test_a_success_below_target_is_an_anomaly() -> None:
    track, _ = evolve_track(None, at(1, sw_result("SUCCESS", cur="1.0", target="2.0")))
    assert track is not None
    assert track.last_result is not None
    assert track.last_result.anomaly is True
    assert track.version == "1.0"


def test_result_fields() -> None:
    track, _ = evolve_track(None, at(4, sw_result("FAIL", cur="1.0", target="2.0", source="1.0")))
    assert track is not None
    r = track.last_result
    assert r is not None
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        "E42",
        "done",
        "desc",
        "60",
    )
    assert (r.source_version, r.current_version, r.position) == ("1.0", "1.0", 4)
    track, _ = evolve_track(None, at(4, fw_result("FAIL")))
    assert track is not None
    r = track.last_result
    assert r is not None
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        None,
        "fw done",
        None,
        60,
    )


def test_the_same_result_again_is_a_retry() -> None:
    track, _ = evolve_track(None, at(1, sw_result()))
    assert evolve_track(track, at(2, sw_result())) == (None, None)


def test_a_result_keeps_the_state() -> None:
    track, _ = evolve_track(None, at(1, sw("updating")))
    track, _ = evolve_track(track, at(2, sw_result()))
    assert track is not None
    assert (track.state, track.state_since, track.last_position) == (
        "updating",
        T0.replace(second=1),
        2,
    )


def test_a_track_is_settled_once_the_result_of_its_sub_operation_arrives() -> None:
    track = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    assert track is not None
    assert is_settled(track) is False
    track, _ = evolve_track(track, at(4, sw_result()))
    assert track is not None
    assert is_settled(track) is True
    track, _ = evolve_track(track, at(5, sw("downloading", op="op-2", sub="sub-2")))
    assert track is not None
    assert is_settled(track) is False  # a new upgrade waits for its own result


def test_a_readmitted_state_older_than_the_current_one_is_not_applied() -> None:
    track = fold(sw("downloading"), sw("downloaded"))  # downloaded since second 2
    assert track is not None
    changed, transition = evolve_track(track, at(3, sw("idle"), second=1, readmitted=True))
    assert transition is not None
    assert changed == track._replace(unapplied="idle")
    assert (transition.from_state, transition.to_state) == ("downloaded", "idle")
    assert (transition.applied, transition.received_at) == (False, seconds(1))


def test_a_readmitted_state_newer_than_the_current_one_applies() -> None:
    track = fold(sw("downloading"))  # since second 1
    changed, transition = evolve_track(track, at(9, sw("downloaded"), second=5, readmitted=True))
    assert changed is not None
    assert transition is not None
    assert (changed.state, changed.state_since, changed.last_position) == (
        "downloaded",
        seconds(5),
        9,
    )
    assert (transition.valid, transition.applied) == (True, True)


def test_a_readmitted_late_re_push_is_still_late() -> None:
    # Received at second 3, after downloaded (second 2): had it been accepted then, it would
    # have been a late re-push. Readmitting it must not make it regress the track.
    track = fold(sw("downloading"), sw("downloaded"))
    assert track is not None
    changed, transition = evolve_track(track, at(9, sw("downloading"), second=3, readmitted=True))
    assert transition is not None
    assert changed == track._replace(unapplied="downloading")
    assert transition.applied is False


def test_a_readmitted_result_older_than_the_last_one_is_not_applied() -> None:
    track = fold(sw("updating"), sw_result("SUCCESS"))  # the last result: second 2
    older = sw_result("FAIL", cur="1.0", target="2.0")
    changed, transition = evolve_track(track, at(3, older, second=1, readmitted=True))
    assert changed is None
    assert transition is not None
    assert transition.result is not None
    assert (transition.kind, transition.applied) == ("result", False)
    assert (transition.result.result, transition.received_at) == ("FAIL", seconds(1))


def test_a_readmitted_result_newer_than_the_last_one_applies() -> None:
    track = fold(sw("updating"), sw_result("SUCCESS", cur="2.0"))  # the last result: second 2
    newer = sw_result("FAIL", cur="1.0", target="2.0")
    changed, transition = evolve_track(track, at(5, newer, second=3, readmitted=True))
    assert changed is not None
    assert changed.last_result is not None
    assert transition is not None
    assert (transition.kind, transition.applied) == ("result", True)
    assert (changed.last_result.result, changed.version) == ("FAIL", "1.0")


def test_a_readmitted_result_applies_when_the_track_has_none() -> None:
    track = fold(sw("updating"))
    changed, transition = evolve_track(track, at(5, sw_result(), second=0, readmitted=True))
    assert changed is not None
    assert changed.last_result is not None
    assert transition is not None
    assert (transition.kind, transition.applied) == ("result", True)
    assert changed.last_result.received_at == T0


def test_updated_at_never_moves_back() -> None:
    track = fold(sw("downloading"), sw("downloaded"))  # updated at second 2
    track, _ = evolve_track(track, at(3, sw_result("SUCCESS"), second=9))  # a result at 9
    changed, _ = evolve_track(track, at(4, sw("updating"), second=5, readmitted=True))
    assert changed is not None
    assert (changed.state, changed.state_since, changed.updated_at) == (
        "updating",
        seconds(5),
        seconds(9),
    )
    result = sw_result("FAIL", cur="1.0", target="2.0", op="op-2")
    changed, _ = evolve_track(changed, at(5, result, second=9.5, readmitted=True))
    assert changed is not None
    assert changed.updated_at == seconds(9.5)
    changed, _ = evolve_track(changed, at(6, sw_result("SUCCESS", op="op-3"), second=9.2))
    assert changed is not None
    assert changed.updated_at == seconds(9.5)
