"""The row codecs are spelled out by hand for speed: they must still match the tables exactly."""

import pytest

from tests.unit.builders import at, fw, sw, sw_result, task
from tracker.domain.projection import Projection
from tracker.store.rows import (
    ALL_TABLES,
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    TASK_TRANSITIONS,
    TASKS,
)


def folded() -> Projection:
    projection = Projection()
    events = [
        sw("downloading"),
        sw("downloaded"),
        sw_result(),
        fw("downloading", device="d-2"),
        task("Waitting"),
        task("Processing", second=5, request_id="r2"),
    ]
    for position, notification in enumerate(events, 1):
        projection.apply(at(position, notification))
    return projection


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_columns_follow_the_domain_fields_in_order(table):
    sample = {
        DEVICE_TRACKS.name: folded().tracks,
        OPERATION_DEVICES.name: folded().members,
        TASKS.name: folded().tasks,
        DEVICE_TRANSITIONS.name: {0: folded().device_transitions[0]},
        TASK_TRANSITIONS.name: {0: folded().task_transitions[0]},
    }[table.name]
    item = next(iter(sample.values()))
    assert table.column_names == list(item._fields)


@pytest.mark.parametrize(
    ("table", "items"),
    [
        (DEVICE_TRANSITIONS, lambda p: p.device_transitions),
        (TASK_TRANSITIONS, lambda p: p.task_transitions),
        (OPERATION_DEVICES, lambda p: list(p.members.values())),
    ],
    ids=lambda x: getattr(x, "name", ""),
)
def test_plain_rows_are_the_fields_in_order(table, items):
    rows = items(folded())
    assert rows
    for item in rows:
        assert tuple(table.to_row(item)) == tuple(getattr(item, c) for c in table.column_names)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_rows_survive_a_round_trip(table):
    projection = folded()
    items = {
        DEVICE_TRACKS.name: list(projection.tracks.values()),
        OPERATION_DEVICES.name: list(projection.members.values()),
        TASKS.name: list(projection.tasks.values()),
        DEVICE_TRANSITIONS.name: projection.device_transitions,
        TASK_TRANSITIONS.name: projection.task_transitions,
    }[table.name]
    assert items
    for item in items:
        row = dict(zip(table.column_names, table.to_row(item), strict=True))
        assert table.from_row(row) == item
