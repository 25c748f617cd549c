"""The shared fold: routing, change tracking, operation membership."""

from __future__ import annotations

from tests.unit.builders import at, fw, sw, sw_result, task
from tracker.domain.notifications import Notification
from tracker.domain.operation import evolve_membership
from tracker.domain.projection import Projection, keys_of


def test_keys_name_exactly_the_rows_an_event_touches() -> None:
    keys = keys_of(
        [
            sw("idle", device="a", op="o1"),
            fw("idle", device="a", op="o2"),
            task("Waitting", task_id="t"),
        ]
    )
    assert keys.tracks == {("a", "software"), ("a", "firmware")}
    assert keys.members == {("o1", "software", "a"), ("o2", "firmware", "a")}
    assert keys.devices == {"a"}
    assert keys.tasks == {"t"}


def test_changes_are_taken_once() -> None:
    projection = Projection()
    events: list[Notification] = [
        sw("downloading"),
        sw("downloading"),
        fw("idle"),
        task("Waitting"),
    ]
    for position, notification in enumerate(events, 1):
        projection.apply(at(position, notification))
    changes = projection.take_changes()
    assert [(t.track, t.state) for t in changes.tracks] == [
        ("firmware", "idle"),
        ("software", "downloading"),
    ]
    assert len(changes.device_transitions) == 2  # the retry added none
    assert len(changes.task_transitions) == 1
    assert len(changes.members) == 2
    empty = projection.take_changes()
    assert (empty.tracks, empty.device_transitions, empty.members) == ([], [], [])


def test_membership_keeps_state_and_result_per_operation() -> None:
    member = evolve_membership(None, at(1, sw("downloading", op="o1")))
    assert member is not None
    assert (member.state, member.result, member.last_position) == ("downloading", None, 1)
    member = evolve_membership(member, at(2, sw_result("FAIL", op="o1")))
    assert member is not None
    assert (member.state, member.result, member.last_position) == ("downloading", "FAIL", 2)
    assert evolve_membership(member, at(3, sw_result("FAIL", op="o1"))) is None
