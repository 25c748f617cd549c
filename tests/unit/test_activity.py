"""A rollout's activity per minute (domain/activity.py): what each transition adds, and that
batches add up to the whole (the live path writes deltas, replay counts once)."""

from __future__ import annotations

from datetime import timedelta, timezone

from tests.unit.builders import T0, at, sw, sw_result
from tracker.domain.activity import MinuteActivity, activity, minute_of
from tracker.domain.notifications import Notification
from tracker.domain.projection import Projection


def test_each_minute_counts_reports_invalid_moves_and_results() -> None:
    projection = Projection()
    history: list[tuple[int, Notification]] = [
        (0, sw("downloading", device="a")),
        (10, sw("downloaded", device="a")),
        (59, sw("idle", device="b")),
        (61, sw("updating", device="b")),  # idle → updating: invalid, in the next minute
        (62, sw_result("SUCCESS", device="a")),
        (125, sw_result("FAIL", device="b")),
    ]
    for position, (seconds, notification) in enumerate(history, 1):
        projection.apply(at(position, notification, second=seconds))
    assert activity(projection.take_changes().device_transitions) == [
        MinuteActivity("op-1", "software", T0, 3, 0, 0, 0),
        MinuteActivity("op-1", "software", T0 + timedelta(minutes=1), 1, 1, 1, 0),
        MinuteActivity("op-1", "software", T0 + timedelta(minutes=2), 0, 0, 0, 1),
    ]


def test_a_minute_is_a_minute_of_utc_whatever_the_offset() -> None:
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    local = (T0 + timedelta(seconds=30)).astimezone(kathmandu)
    assert minute_of(local) == T0
    assert minute_of(local).utcoffset() == timedelta(0)


def test_batches_add_up_to_the_whole() -> None:
    """What the live path writes, batch by batch, sums to the count of all of it."""
    projection = Projection()
    batches = []
    for position in range(1, 41):
        state = ("downloading", "downloaded", "updating", "idle")[position % 4]
        seconds = (position * 17) % 200
        # Each its own sub-operation: within one, the same state again is a repeat.
        notification = sw(state, device=f"d-{position % 5}", sub=f"s-{position}")  # type: ignore[arg-type]
        projection.apply(at(position, notification, second=seconds))
        if position % 7 == 0:
            batches.append(projection.take_changes().activity)
    batches.append(projection.take_changes().activity)
    summed: dict[tuple[object, ...], list[int]] = {}
    for rows in batches:
        for row in rows:
            counts = summed.setdefault(row[:3], [0, 0, 0, 0])
            for i, n in enumerate(row[3:]):
                counts[i] += n
    assert sum(c[0] for c in summed.values()) == 40
    assert all(c[1] <= c[0] for c in summed.values())
