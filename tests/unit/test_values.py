"""Each set of values is declared once (domain/notifications.py); what spells them elsewhere is
generated from that declaration or held to it here (the SQL in the database: tests/integration/
test_enum_predicates.py)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import get_args

from tests.unit.builders import alert_fired, at, fw, fw_result, sw, sw_result, task
from tracker.domain.device import BUSY_STATES
from tracker.domain.notifications import (
    RESULTS,
    SUBTASK_STATUSES,
    TRACKS,
    UPGRADE_STATES,
    Notification,
)
from tracker.domain.operation import STATE_COUNTERS, OperationCounts
from tracker.domain.projection import Changes, HeldRow, Projection
from tracker.store import literals
from tracker.store.queries import STUCK_WHERE
from tracker.store.rebuild import PROJECTED, RECOUNT
from tracker.store.rows import ALL_TABLES, HELD, PROJECTION_TABLES, ROLLUPS, TRAILS

DASHBOARD = Path(__file__).resolve().parents[2] / "tracker" / "dashboard" / "dom.js"


def test_a_rollup_has_a_counter_per_state_and_per_result_in_declared_order() -> None:
    counters = OperationCounts._fields[5:11]
    assert counters == (*UPGRADE_STATES, *(r.lower() for r in RESULTS))
    iotda = OperationCounts._fields[13:]
    assert iotda == tuple(STATE_COUNTERS[s] for s in SUBTASK_STATUSES if s in STATE_COUNTERS)
    assert set(STATE_COUNTERS) == {*UPGRADE_STATES, *SUBTASK_STATUSES} - {"Success", "Fail"}


def test_a_device_is_busy_in_every_state_but_idle() -> None:
    assert BUSY_STATES == ("downloading", "downloaded", "updating")


def test_the_predicates_the_planner_needs_are_generated_as_written_in_sql() -> None:
    assert STUCK_WHERE == "state IN ('downloading', 'downloaded', 'updating') AND NOT settled"
    assert PROJECTED == "stream_type IN ('device', 'task', 'alert')"
    assert "count(*) FILTER (WHERE state = 'idle')" in RECOUNT
    assert "WHERE result = 'FAIL'" in RECOUNT


def test_a_literal_is_quoted() -> None:
    assert literals.text("it's") == "'it''s'"
    assert literals.one_of("c", ("a", "b'")) == "c IN ('a', 'b''')"


def _js_constant(name: str) -> list[str]:
    found = re.search(rf"export const {name} = (\[[^\]]*\]);", DASHBOARD.read_text())
    assert found is not None, name
    values: list[str] = json.loads(found.group(1))
    return values


def test_the_dashboard_spells_the_tracks_and_states_as_declared() -> None:
    assert _js_constant("TRACKS") == list(TRACKS)
    assert _js_constant("STATES") == list(UPGRADE_STATES)
    assert _js_constant("SUBTASK_STATUSES") == list(SUBTASK_STATUSES)


def test_the_dashboard_lists_the_states_only_in_its_declaration() -> None:
    """Any other literal list of them would not follow a change to the declaration."""
    listed = re.compile(r'"(?:{})"\s*,\s*"(?:{})"'.format(*["|".join(UPGRADE_STATES)] * 2))
    found = [
        f"{script.name}:{number}"
        for script in sorted(DASHBOARD.parent.glob("*.js"))
        for number, line in enumerate(script.read_text().splitlines(), 1)
        if listed.search(line) and "export const STATES" not in line
    ]
    assert found == []


def test_every_table_is_of_one_kind() -> None:
    assert len(HELD) + len(TRAILS) + len(ROLLUPS) == len(PROJECTION_TABLES) == len(ALL_TABLES)
    assert all(p.load is not None for p in HELD)
    # What live ingestion loads, the fold can hold (Projection.seed), and nothing else.
    assert {p.table.row for p in HELD} == set(get_args(HeldRow))
    assert len({p.table.name for p in PROJECTION_TABLES}) == len(PROJECTION_TABLES)


def test_every_kind_of_row_the_fold_changes_reaches_its_table() -> None:
    projection = Projection()
    folded: list[Notification] = [
        sw("downloading"),
        sw_result("FAIL"),
        fw("updating"),
        fw_result(),
        task("Waitting"),
        alert_fired(),
    ]
    for position, n in enumerate(folded, 1):
        projection.apply(at(position, n))
    changes = projection.take_changes()
    rows = {t: list(p.changed(changes)) for p in PROJECTION_TABLES for t in [p.table]}
    assert all(rows.values()), [t.name for t, r in rows.items() if not r]  # each has some
    for table, written in rows.items():
        assert all(type(row) is table.row for row in written), table.name
    # ...and every list of changed rows is one table's.
    listed = [f.name for f in fields(Changes) if isinstance(getattr(changes, f.name), list)]
    produced = {type(row) for name in listed for row in getattr(changes, name)}
    assert produced <= {t.row for t in rows}
    for held in HELD:
        assert held.held is not None
        assert all(type(row) is held.table.row for row in held.held(projection)), held.table
