"""Every rule of a device track's machine: moves, repeats, late reports within a sub-operation,
reports of sub-operations the device has left, readmitted deliveries, results."""

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
from tracker.domain.device import (
    VALID_MOVES,
    DeviceTransition,
    Folded,
    SubKey,
    TrackState,
    evolve_track,
    is_settled,
)
from tracker.domain.notifications import DeviceNotification, Result, Track, UpgradeState
from tracker.domain.projection import Projection
from tracker.domain.suboperation import SubOperation

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
# How far into a sub-operation each state is: idle is where it ends.
FURTHER: dict[UpgradeState, int] = {"downloading": 1, "downloaded": 2, "updating": 3, "idle": 4}


def seconds(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


class Device:
    """One device track, folded as the projection folds it: its sub-operations and its row."""

    def __init__(self) -> None:
        self.subs: dict[SubKey, SubOperation] = {}
        self.track: TrackState | None = None
        self.trail: list[DeviceTransition] = []

    def feed(
        self, position: int, notification: DeviceNotification, second: float | None = None
    ) -> Folded:
        folded = evolve_track(self.track, self.subs, at(position, notification, second))
        if folded.sub is not None:
            self.subs[folded.sub.operation_id, folded.sub.sub_operation_id] = folded.sub
        if folded.track is not None:
            self.track = folded.track
        if folded.transition is not None:
            self.trail.append(folded.transition)
        return folded

    @property
    def now(self) -> TrackState:
        assert self.track is not None
        return self.track


def fold(*notifications: DeviceNotification) -> Device:
    """The device after the notifications, received at positions (and seconds) 1, 2, ..."""
    device = Device()
    for position, notification in enumerate(notifications, 1):
        device.feed(position, notification)
    return device


def test_the_legal_moves_are_exactly_those_of_the_design() -> None:
    assert set(VALID_MOVES) == LEGAL


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize("to_state", STATES)
def test_the_first_observation_may_be_any_state(make: StateBuilder, to_state: UpgradeState) -> None:
    sub, track, transition = evolve_track(None, {}, at(1, make(to_state)))
    assert sub is not None
    assert track is not None
    assert transition is not None
    assert (track.state, sub.state, sub.seen) == (to_state, to_state, frozenset((to_state,)))
    assert (transition.from_state, transition.to_state, transition.valid) == (None, to_state, True)
    assert transition.track == ("software" if make is sw else "firmware")
    assert (transition.kind, transition.applied, transition.reason) == ("state", True, None)
    assert transition.result is None


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_within_a_sub_operation(
    make: StateBuilder, before: UpgradeState, after: UpgradeState
) -> None:
    device = fold(make(before))
    held = device.now
    sub, track, transition = device.feed(2, make(after))  # the same op-1 / sub-1
    if before == after:
        assert (sub, track, transition) == (None, None, None)  # a repeat: nothing at all
        return
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.valid is ((before, after) in LEGAL)
    assert (transition.position, transition.received_at) == (2, seconds(2))
    if FURTHER[after] > FURTHER[before]:  # the sub-operation goes on
        assert track is not None
        assert (track.state, track.state_since, track.last_position) == (after, seconds(2), 2)
        assert (transition.applied, transition.reason) == (True, None)
    else:  # it was past that already: late, whatever the machine says of the move
        assert track is None
        assert device.now == held
        assert (transition.applied, transition.reason) == (False, "stale")
        # ...and a re-push of the late report records nothing more.
        assert device.feed(3, make(after)) == (None, None, None)


@pytest.mark.parametrize("make", [sw, fw], ids=["software", "firmware"])
@pytest.mark.parametrize(("before", "after"), list(itertools.product(STATES, STATES)))
def test_every_pair_of_states_across_sub_operations(
    make: StateBuilder, before: UpgradeState, after: UpgradeState
) -> None:
    device = fold(make(before, sub="sub-1"))
    _, _, transition = device.feed(2, make(after, sub="sub-2"))
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.valid is (before == after or (before, after) in LEGAL)
    # The unfinished one (not idle) is the current one; if both are, or neither, sub-2's ids
    # are the greater.
    current = "sub-1" if before != "idle" and after == "idle" else "sub-2"
    assert device.now.sub_operation_id == current
    assert device.now.state == (before if current == "sub-1" else after)
    assert transition.applied is (current == "sub-2")
    assert transition.reason == (None if current == "sub-2" else "earlier_operation")


def test_an_update_that_failed_back_to_downloaded_shows_the_furthest_step_and_its_fail() -> None:
    # LwM2M: "If the Update Resource failed, the state returns at Downloaded." The report is byte
    # for byte the earlier `downloaded`, so it reads as a re-push; the FAIL says what happened.
    device = fold(sw("downloading"), sw("downloaded"), sw("updating"), sw("downloaded"))
    assert (device.now.state, device.trail[-1].reason) == ("updating", None)  # a repeat
    assert len(device.trail) == 3
    device.feed(5, sw_result("FAIL", cur="1.0", target="2.0"))
    assert (device.now.state, is_settled(device.now)) == ("updating", True)


def test_a_late_re_push_is_recorded_but_not_applied() -> None:
    device = fold(sw("downloaded"))
    held = device.now
    _, track, transition = device.feed(2, sw("downloading"))
    assert track is None
    assert device.now == held  # still downloaded, since second 1
    assert transition is not None
    assert (transition.from_state, transition.to_state) == ("downloaded", "downloading")
    assert (transition.valid, transition.applied, transition.reason) == (False, False, "stale")
    # The device goes on from the state the track held.
    _, track, transition = device.feed(3, sw("updating"))
    assert track is not None
    assert transition is not None
    assert (track.state, transition.from_state, transition.valid) == (
        "updating",
        "downloaded",
        True,
    )


def test_idle_ends_a_sub_operation() -> None:
    device = fold(sw("downloading"), sw("idle"))  # the download failed
    late_steps: tuple[UpgradeState, ...] = ("downloaded", "updating")
    for position, late in enumerate(late_steps, 3):
        _, track, transition = device.feed(position, sw(late))
        assert track is None
        assert transition is not None
        assert (transition.applied, transition.reason) == (False, "stale")
    assert device.now.state == "idle"


def test_a_report_of_an_operation_the_device_has_left_moves_only_that_operation() -> None:
    # op-1's SUCCESS came before its `idle`; op-2 has begun since.
    device = fold(sw("updating", op="op-1"), sw_result(op="op-1"), sw("downloading", op="op-2"))
    held = device.now
    assert (held.operation_id, held.state, is_settled(held)) == ("op-2", "downloading", False)
    sub, track, transition = device.feed(4, sw("idle", op="op-1"))
    assert sub is not None
    assert sub.state == "idle"  # op-1's sub-operation took it (its rollout's member will)
    assert track is None  # but the device is in op-2
    assert transition is not None
    assert (transition.applied, transition.reason) == (False, "earlier_operation")
    assert (transition.from_state, transition.to_state, transition.operation_id) == (
        "downloading",
        "idle",
        "op-1",
    )


def test_a_late_result_of_an_earlier_operation_leaves_the_track_to_the_later_one() -> None:
    device = fold(
        sw("downloading", op="op-1"),
        sw("idle", op="op-1"),  # op-1 failed its download...
        sw("downloading", op="op-2"),
        sw("idle", op="op-2"),
        sw_result("SUCCESS", source="1.0", cur="2.0", target="2.0", op="op-2"),
    )
    assert (device.now.operation_id, device.now.version) == ("op-2", "2.0")
    # ...and its FAIL, pushed again after op-2's SUCCESS: op-2 started from the version op-1
    # left, so op-2 came after it.
    _, track, transition = device.feed(
        6, sw_result("FAIL", source="1.0", cur="1.0", target="2.0", op="op-1")
    )
    assert track is None
    assert transition is not None
    assert transition.result is not None
    assert (transition.kind, transition.result.result) == ("result", "FAIL")
    assert (transition.applied, transition.reason) == (False, "earlier_operation")
    assert device.now.last_result is not None
    assert (device.now.operation_id, device.now.last_result.result) == ("op-2", "SUCCESS")


def test_firmware_steps_map_to_states() -> None:
    device = Device()
    steps: list[UpgradeState] = ["downloading", "downloaded", "updating", "idle"]
    for position, step_state in enumerate(steps, 1):
        _, track, transition = device.feed(position, fw(step_state))
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
    _, track, transition = evolve_track(None, {}, at(1, report))
    assert track is not None
    assert transition is not None
    assert (track.state, transition.to_state) == ("downloading", "downloading")
    assert transition.inconsistent is True


@pytest.mark.parametrize("step_desc", ["downloading", "Downloading ", " DOWNLOADING", None])
def test_an_agreeing_or_missing_step_desc_is_consistent(step_desc: str | None) -> None:
    _, track, transition = evolve_track(None, {}, at(1, fw("downloading", step_desc=step_desc)))
    assert track is not None
    assert transition is not None
    assert (track.state, transition.inconsistent) == ("downloading", False)


def test_a_software_report_is_consistent() -> None:
    _, _, transition = evolve_track(None, {}, at(1, sw("downloading")))
    assert transition is not None
    assert transition.inconsistent is False


def test_the_same_state_under_a_new_operation_is_its_own_and_since_its_own_time() -> None:
    device = fold(sw("downloading", op="op-1"), sw("idle", op="op-1"))
    _, track, transition = device.feed(5, sw("idle", op="op-2", sub="sub-9"))
    assert transition is not None
    assert (transition.from_state, transition.to_state) == ("idle", "idle")
    assert (transition.valid, transition.applied) == (True, True)
    assert track is not None
    assert (track.operation_id, track.sub_operation_id) == ("op-2", "sub-9")
    # Idle since op-2 said so, not since op-1's idle (stuck times would be overstated).
    assert (track.state_since, track.last_position, track.updated_at) == (
        seconds(5),
        5,
        seconds(5),
    )


def test_times_come_from_the_events_only() -> None:
    device = Device()
    device.feed(3, sw("downloading"))
    assert device.now.updated_at == device.now.state_since == seconds(3)
    device.feed(7, sw("downloaded"))
    assert device.now.state_since == seconds(7)


@pytest.mark.parametrize(("make", "track_name"), [(sw_result, "software"), (fw_result, "firmware")])
def test_every_result_sets_the_version_it_reports(make: ResultBuilder, track_name: Track) -> None:
    device = Device()
    device.feed(1, make("SUCCESS", cur="2.0", target="2.0", op="op-1"))
    track = device.now
    assert (track.track, track.state, track.version) == (track_name, None, "2.0")
    assert track.last_result is not None
    assert (track.last_result.result, track.last_result.anomaly) == ("SUCCESS", False)
    # A FAIL reports the version the device is left with, too (op-2 started from 2.0).
    _, failed, transition = device.feed(2, make("FAIL", cur="2.1", target="3.0", op="op-2"))
    assert transition is not None
    assert transition.kind == "result"
    assert failed is not None
    assert failed.version == "2.1"
    assert failed.last_result is not None
    assert (failed.last_result.result, failed.last_result.target_version) == ("FAIL", "3.0")
    assert failed.last_result.anomaly is False


def test_a_result_without_a_current_version_keeps_the_one_known() -> None:
    device = fold(sw_result("SUCCESS", source="1.0", cur="2.0", op="op-1"))
    device.feed(2, sw_result("FAIL", source="2.0", cur=None, target="3.0", op="op-2"))
    assert device.now.last_result is not None
    assert (device.now.operation_id, device.now.version) == ("op-2", "2.0")
    assert device.now.last_result.current_version is None


@pytest.mark.parametrize("make", [sw_result, fw_result], ids=["software", "firmware"])
def test_a_result_is_a_transition_of_its_own_kind(make: ResultBuilder) -> None:
    _, track, transition = evolve_track(None, {}, at(1, make("FAIL", cur="1.0", target="2.0")))
    assert track is not None
    assert transition is not None
    assert (transition.kind, transition.from_state, transition.to_state) == ("result", None, None)
    assert (transition.valid, transition.applied, transition.inconsistent) == (True, True, False)
    assert transition.result == track.last_result
    assert (transition.position, transition.received_at) == (1, seconds(1))


def test_a_result_transition_keeps_the_state_of_the_track() -> None:
    device = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    _, changed, transition = device.feed(4, sw_result())
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
    assert (changed.state, changed.state_since) == ("updating", seconds(3))


def test_a_result_of_another_operation_waits_for_the_unfinished_one_to_end() -> None:
    device = fold(sw("updating", op="op-1"))
    _, track, transition = device.feed(2, sw_result(source="1.0", cur="2.0", op="op-2"))
    # op-1 has not finished: as far as anything says, the device is still in it (op-2 ran
    # before it); the track's last result and version are op-2's.
    assert track is not None
    assert (track.operation_id, track.state, track.version) == ("op-1", "updating", "2.0")
    assert transition is not None
    assert (transition.applied, transition.reason) == (True, None)
    # op-1's end arrives: it failed on 1.0, and op-2 started from 1.0 and left 2.0.
    device.feed(3, sw_result("FAIL", source="1.0", cur="1.0", target="2.0", op="op-1"))
    assert (device.now.operation_id, device.now.version) == ("op-2", "2.0")


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
    device = fold(make(outcome, cur=cur, target=target))
    assert device.now.last_result is not None
    assert device.now.last_result.anomaly is expected


def test_a_success_below_target_is_an_anomaly() -> None:
    device = fold(sw_result("SUCCESS", cur="1.0", target="2.0"))
    assert device.now.last_result is not None
    assert device.now.last_result.anomaly is True
    assert device.now.version == "1.0"


def test_result_fields() -> None:
    device = Device()
    device.feed(4, sw_result("FAIL", cur="1.0", target="2.0", source="1.0"))
    r = device.now.last_result
    assert r is not None
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        "E42",
        "done",
        "desc",
        "60",
    )
    assert (r.source_version, r.current_version, r.position) == ("1.0", "1.0", 4)
    device = Device()
    device.feed(4, fw_result("FAIL"))
    r = device.now.last_result
    assert r is not None
    assert (r.error_code, r.result_desc, r.description, r.upgrade_time) == (
        None,
        "fw done",
        None,
        60,
    )


def test_the_same_result_again_is_a_repeat() -> None:
    device = fold(sw_result())
    assert device.feed(2, sw_result()) == (None, None, None)


@pytest.mark.parametrize("success_first", [True, False])
def test_within_a_sub_operation_a_success_outranks_a_fail(success_first: bool) -> None:
    # The platform's retry policy runs only failed sub-tasks again: a FAIL may be followed by a
    # SUCCESS under the same subOperationId, never the reverse.
    failed = sw_result("FAIL", cur="1.0", target="2.0")
    succeeded = sw_result("SUCCESS", cur="2.0", target="2.0")
    first, second = (succeeded, failed) if success_first else (failed, succeeded)
    device = fold(sw("downloading"), first)
    _, _, transition = device.feed(3, second)
    assert transition is not None
    assert transition.applied is not success_first
    assert transition.reason == ("stale" if success_first else None)
    assert device.now.last_result is not None
    assert (device.now.last_result.result, device.now.version) == ("SUCCESS", "2.0")


def test_a_track_is_settled_once_the_result_of_its_sub_operation_arrives() -> None:
    device = fold(sw("downloading"), sw("downloaded"), sw("updating"))
    assert is_settled(device.now) is False
    device.feed(4, sw_result())
    assert is_settled(device.now) is True
    device.feed(5, sw("idle"))
    device.feed(6, sw("downloading", op="op-2", sub="sub-2"))
    assert is_settled(device.now) is False  # a new upgrade waits for its own result


def test_a_readmitted_delivery_is_judged_by_what_it_says_at_its_own_time() -> None:
    # Refused at second 0.5, readmitted at position 9 after the device's `downloading` and
    # `updating`: its step is behind them, so it is late, whenever it was received.
    device = fold(sw("downloading"), sw("updating"))
    _, track, transition = device.feed(9, sw("downloaded"), second=0.5)
    assert track is None
    assert transition is not None
    assert (transition.applied, transition.reason, transition.received_at) == (
        False,
        "stale",
        seconds(0.5),
    )
    # Refused at 1.5, readmitted at 10: the furthest step, so it applies since then.
    device.feed(10, sw("idle"), second=1.5)
    assert (device.now.state, device.now.state_since, device.now.last_position) == (
        "idle",
        seconds(1.5),
        10,
    )
    assert device.now.updated_at == seconds(2)  # never moves back


def test_updated_at_never_moves_back() -> None:
    device = fold(sw("downloading"), sw("downloaded"))  # updated at second 2
    device.feed(3, sw_result("SUCCESS"), second=9)  # a result at 9
    device.feed(4, sw("updating"), second=5)  # readmitted: received at 5
    assert (device.now.state, device.now.state_since, device.now.updated_at) == (
        "updating",
        seconds(5),
        seconds(9),
    )
    device.feed(5, sw_result("FAIL", source="2.0", cur="2.0", target="3.0", op="op-2"), 9.5)
    assert device.now.updated_at == seconds(9.5)
    device.feed(6, sw_result("SUCCESS", source="2.0", cur="3.0", target="3.0", op="op-3"), 9.2)
    assert (device.now.operation_id, device.now.updated_at) == ("op-3", seconds(9.5))


def test_a_device_was_first_seen_at_its_earliest_delivery() -> None:
    # A delivery readmitted from `rejected` keeps the time it was first received.
    projection = Projection()
    projection.apply(at(1, sw("downloading"), second=10))
    projection.apply(at(2, sw("downloaded"), second=4))
    projection.apply(at(3, sw("updating"), second=7))
    assert projection.devices["d-1"].first_seen_at == seconds(4)


@pytest.mark.parametrize("reverse", [False, True])
def test_two_different_failures_of_one_sub_operation_keep_one_whatever_the_order(
    reverse: bool,
) -> None:
    first = sw_result("FAIL", cur="1.0", error="E12", desc="download failed")
    second = sw_result("FAIL", cur="1.0", error="E31", desc="update failed")
    device = fold(*((second, first) if reverse else (first, second)))
    assert device.now.last_result is not None
    assert device.now.last_result.error_code == "E31"  # the greater content, either way


@pytest.mark.parametrize("reverse", [False, True])
def test_a_sub_operation_s_application_is_the_least_its_reports_name(reverse: bool) -> None:
    reports = [sw("downloading", app="app-b"), sw("downloaded", app="app-a")]
    device = fold(*(reports[::-1] if reverse else reports))
    assert device.now.app_id == "app-a"
    (sub,) = device.subs.values()
    assert sub.app_id == "app-a"


def test_a_sub_operation_s_updated_at_never_moves_back() -> None:
    device = Device()
    device.feed(1, sw("downloading"), second=9)
    device.feed(2, sw("downloaded"), second=3)  # readmitted: first received at 3
    (sub,) = device.subs.values()
    assert (sub.updated_at, sub.last_position, sub.first_seen_at) == (seconds(9), 2, seconds(9))
