"""Tables are derived from the domain's row types: columns follow the fields, and every row
survives the trip to the database's values and back."""

from datetime import datetime
from typing import Any, Literal, TypeVar, cast

import pytest

from tests.unit.builders import T0, at, fw, fw_result, sw, sw_result, task
from tracker.domain.activity import activity
from tracker.domain.notifications import AlertChanged, AlertState, AlertStopped, Notification
from tracker.domain.operation import tally
from tracker.domain.projection import Projection
from tracker.domain.task import TaskEvent
from tracker.store.database import Record
from tracker.store.rows import (
    ALERT_TRANSITIONS,
    ALERTS,
    ALL_TABLES,
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    DEVICES,
    OPERATION_ACTIVITY,
    OPERATION_DEVICES,
    OPERATION_ERRORS,
    OPERATION_VERSIONS,
    OPERATIONS,
    SUB_OPERATIONS,
    TASK_TRANSITIONS,
    TASKS,
)
from tracker.store.table import Table, column_type

R = TypeVar("R", bound=tuple[Any, ...])


def _alert(number: int, state: AlertState, codes: tuple[str, ...] = ()) -> AlertChanged:
    return AlertChanged(
        id=f"g:op-1:software:{number}",
        guard="g",
        operation_id="op-1",
        track="software",
        app_id="app-1",
        platform="iotda",
        state=state,
        value=0.25,
        threshold=0.2,
        at=T0,
        fired_at=T0,
        number=number,
        new_codes=codes,
        known_codes=() if state == "firing" else codes,
    )


# One alert fired for two new codes and stopped; another fired, then resolved with no stop.
ALERT_EVENTS: list[Notification] = [
    _alert(1, "firing", ("E1", "E2")),
    AlertStopped(
        guard="g",
        operation_id="op-1",
        track="software",
        number=1,
        outcome="stopping",
        detail='{"task_id": "op-1"}',
        at=T0,
    ),
    _alert(1, "firing").model_copy(update={"guard": "h", "id": "h:op-1:software:1"}),
    _alert(2, "resolved").model_copy(update={"guard": "h", "id": "h:op-1:software:2"}),
]


def folded() -> Projection:
    projection = Projection()
    events: list[Notification] = [
        sw_result("FAIL", device="d-0"),  # a result before any state: state None
        sw("downloading"),
        sw("downloaded"),
        sw_result(),
        fw("downloading", device="d-2"),
        fw_result("FAIL", device="d-2"),
        task("Waitting"),
        task("Processing", second=5, request_id="r2"),
        task("Fail", second=5, request_id="r3", ms=False),  # the same second: kept with it
        *ALERT_EVENTS,
    ]
    for position, notification in enumerate(events, 1):
        projection.apply(at(position, notification))
    return projection


def samples(table: Table[R]) -> list[R]:
    projection = folded()
    rollup = tally((None, member) for member in projection.members.values())
    # Each table's name maps to rows of its own type, which a dict's type cannot say.
    return cast(
        "list[R]",
        {
            DEVICES.name: list(projection.devices.values()),
            DEVICE_TRACKS.name: list(projection.tracks.values()),
            SUB_OPERATIONS.name: [s for subs in projection.subs.values() for s in subs.values()],
            OPERATION_DEVICES.name: list(projection.members.values()),
            OPERATIONS.name: list(rollup.counts.values()),
            OPERATION_ERRORS.name: rollup.error_deltas(),
            OPERATION_VERSIONS.name: rollup.version_deltas(),
            OPERATION_ACTIVITY.name: activity(projection.device_transitions),
            TASKS.name: list(projection.tasks.values()),
            DEVICE_TRANSITIONS.name: projection.device_transitions,
            TASK_TRANSITIONS.name: projection.task_transitions,
            ALERTS.name: list(projection.alerts.values()),
            ALERT_TRANSITIONS.name: projection.alert_transitions,
        }[table.name],
    )


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_columns_are_the_fields_in_order_then_the_derived_ones(table: Table[Any]) -> None:
    derived = [d.name for d in table.derived]
    assert table.column_names == [*table.row._fields, *derived]
    assert set(table.key) <= set(table.column_names)


@pytest.mark.parametrize("table", ALL_TABLES, ids=lambda t: t.name)
def test_rows_survive_a_round_trip(table: Table[Any]) -> None:
    items = samples(table)
    assert items
    if table is TASKS:  # a task holding two events of its last second
        assert any(len(t.latest) > 1 for t in items)
    for item in items:
        row = dict(zip(table.column_names, table.to_row(item), strict=True))
        # The dict stands in for the database's Record: from_row only reads record[name].
        assert table.from_row(cast("Record", row)) == item


def test_optional_enumerations_are_stored_blank_not_null() -> None:
    tracks = samples(DEVICE_TRACKS)
    stateless = next(t for t in tracks if t.state is None)
    row = dict(zip(DEVICE_TRACKS.column_names, DEVICE_TRACKS.to_row(stateless), strict=True))
    assert row["state"] == ""
    assert row["result"] == "FAIL"  # derived from last_result
    assert {c.name for c in DEVICE_TRACKS.columns if not c.nullable} >= {"state", "result"}


def test_annotations_map_to_column_types() -> None:
    assert column_type(str) == ("text", False)
    assert column_type(int | None) == ("bigint", True)
    assert column_type(datetime) == ("timestamptz", False)
    assert column_type(Literal["a", "b"] | None) == ("text", True)
    assert column_type(frozenset[str]) == ("jsonb", False)
    assert column_type(tuple[TaskEvent, ...]) == ("jsonb", False)
    with pytest.raises(TypeError, match=r"^no column type for dict\[str, int\]$"):
        column_type(dict[str, int])
