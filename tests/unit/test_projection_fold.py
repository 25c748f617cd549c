"""The shared fold: routing, change tracking, operation membership."""

from __future__ import annotations

from tests.unit.builders import at, fw, sw, sw_result, task
from tracker.domain.notifications import Notification
from tracker.domain.projection import Projection, keys_of


def folded(*notifications: Notification) -> Projection:
    projection = Projection()
    for position, notification in enumerate(notifications, 1):
        projection.apply(at(position, notification))
    return projection


def test_keys_name_exactly_the_rows_an_event_touches() -> None:
    keys = keys_of(
        [
            sw("idle", device="a", op="o1"),
            fw("idle", device="a", op="o2"),
            task("Waitting", task_id="t"),
        ]
    )
    assert keys.members == {("o1", "software", "a"), ("o2", "firmware", "a")}
    assert keys.devices == {"a"}  # both its tracks, and all their sub-operations
    assert keys.tasks == {"t"}


def test_changes_are_taken_once() -> None:
    projection = folded(sw("downloading"), sw("downloading"), fw("idle"), task("Waitting"))
    changes = projection.take_changes()
    assert [(t.track, t.state) for t in changes.tracks] == [
        ("firmware", "idle"),
        ("software", "downloading"),
    ]
    assert [(s.track, s.state) for s in changes.subs] == [
        ("firmware", "idle"),
        ("software", "downloading"),
    ]
    assert [(d.device_id, d.app_id) for d in changes.devices] == [("d-1", "app-1")]
    assert len(changes.device_transitions) == 2  # the repeat added none
    assert len(changes.task_transitions) == 1
    assert len(changes.members) == 2
    empty = projection.take_changes()
    assert (empty.tracks, empty.subs, empty.device_transitions, empty.members) == ([], [], [], [])


def test_membership_keeps_state_and_result_per_operation() -> None:
    projection = folded(sw("downloading", op="o1"))
    member = projection.members["o1", "software", "d-1"]
    assert (member.state, member.result, member.last_position) == ("downloading", None, 1)
    projection.apply(at(2, sw_result("FAIL", op="o1")))
    member = projection.members["o1", "software", "d-1"]
    assert (member.state, member.result, member.error_code, member.last_position) == (
        "downloading",
        "FAIL",
        "E42",
        2,
    )
    projection.take_changes()
    projection.apply(at(3, sw_result("FAIL", op="o1")))  # a repeat
    assert projection.take_changes().members == []


def test_a_report_of_an_operation_the_device_has_left_still_counts_in_its_rollout() -> None:
    projection = folded(
        sw("downloading", op="o1"),
        sw("idle", op="o1"),  # its download failed
        sw("downloading", op="o2", sub="s2"),
        sw_result("SUCCESS", source="1.0", cur="2.0", target="2.0", op="o2", sub="s2"),
        sw("idle", op="o2", sub="s2"),
    )
    projection.take_changes()
    # o1's FAIL, readmitted or re-pushed after o2 succeeded from the version it left.
    projection.apply(at(6, sw_result("FAIL", source="1.0", cur="1.0", target="2.0", op="o1")))
    changes = projection.take_changes()
    assert changes.tracks == []  # the device is in o2
    (transition,) = changes.device_transitions
    assert (transition.applied, transition.reason) == (False, "earlier_operation")
    (member,) = changes.members
    assert (member.operation_id, member.state, member.result) == ("o1", "idle", "FAIL")
    assert changes.rollup.counts["o1", "software"].fail == 1


def test_a_repeat_of_an_ignored_delivery_changes_nothing_anywhere() -> None:
    projection = folded(sw("downloaded"))
    projection.take_changes()
    projection.apply(at(2, sw("downloading")))  # late: recorded, and nothing else
    changes = projection.take_changes()
    assert [t.reason for t in changes.device_transitions] == ["stale"]
    assert (changes.tracks, changes.members, changes.devices) == ([], [], [])
    assert [s.seen for s in changes.subs] == [{"downloaded", "downloading"}]  # remembered
    for position in (3, 4):
        projection.apply(at(position, sw("downloading")))
        again = projection.take_changes()
        assert (again.tracks, again.subs, again.members, again.devices) == ([], [], [], [])
        assert (again.device_transitions, again.activity) == ([], [])
        assert again.rollup.counts == {}


def test_a_device_takes_the_application_of_its_current_operation() -> None:
    projection = folded(
        sw("downloading", op="o1", app="app-1"),
        sw("idle", op="o1", app="app-1"),
        sw("downloading", op="o2", app="app-2"),
    )
    assert projection.devices["d-1"].app_id == "app-2"
    assert projection.tracks["d-1", "software"].app_id == "app-2"
    # Its rollouts keep the application they ran in.
    assert projection.members["o1", "software", "d-1"].app_id == "app-1"
    # A late report of o1 changes neither.
    projection.apply(at(4, sw("downloaded", op="o1", app="app-1")))
    assert projection.devices["d-1"].app_id == "app-2"
