"""Every list page reads rows in proportion to the page, never to the fleet.

A fleet of realistic shape is written straight into the projection tables (100,000 devices, one
big rollout and many small ones, results, errors, stuck devices, tasks), then every filter set
each list offers is planned for its values (as the server's connections plan every statement:
store/database.py) and run with EXPLAIN ANALYZE, first page and a deep page. A page fails the
test if it scans a table, sorts more than a page, walks an index its listing does not own, or
reads more than a page's worth of rows (the merge of its branches reads about `limit` rows
plus one per branch). The planner may take a listing's less specific index and check a filter
row by row where the statistics say nearly every row passes it: the row bound holds it to that.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from testkit.postgres import create_database, drop_database
from tracker.store import feed, queries, rollups
from tracker.store.database import Database
from tracker.store.listing import Listing
from tracker.store.migrations import migrate

DEVICES = 100_000
LIMIT = 100
NOW = datetime.now(UTC)
FLEET = f"""
-- An operation belongs to one application: op-big to app-1, the small ones spread over four.
CREATE FUNCTION pg_temp.app(i int) RETURNS text LANGUAGE sql IMMUTABLE
    RETURN CASE WHEN i % 10 < 7 THEN 'app-1' ELSE 'app-' || (i % 500 % 4) END;
INSERT INTO devices SELECT 'dev-' || lpad(i::text, 7, '0'), pg_temp.app(i), now()
FROM generate_series(1, {DEVICES}) i;

-- Software for every device; firmware for three in ten. One big rollout (op-big, 70%), the
-- rest in 500 small ones. Mostly idle after a result; some busy, a few stuck for hours.
INSERT INTO device_tracks
SELECT 'dev-' || lpad(i::text, 7, '0'), t.track, pg_temp.app(i),
       s.state,
       CASE WHEN s.state = '' THEN NULL ELSE now() - ((i % 600) * interval '1 minute') END,
       CASE WHEN i % 10 < 7 THEN 'op-big' ELSE 'op-' || (i % 500) END, 'sub',
       NULL, NULL, i, now(),
       -- A busy device's last result is often its previous rollout's success.
       CASE WHEN i % 13 = 0 THEN 'FAIL' WHEN s.state = 'idle' OR i % 3 = 0 THEN 'SUCCESS'
            ELSE '' END,
       s.state = 'idle' OR i % 17 = 0  -- settled: a few busy ones have their result
FROM generate_series(1, {DEVICES}) i
CROSS JOIN LATERAL (VALUES ('software'), ('firmware')) AS t(track)
CROSS JOIN LATERAL (SELECT CASE
    WHEN i % 100 < 80 THEN 'idle' WHEN i % 100 < 90 THEN 'downloading'
    WHEN i % 100 < 95 THEN 'downloaded' WHEN i % 100 < 99 THEN 'updating' ELSE '' END) AS s(state)
WHERE t.track = 'software' OR i % 10 < 3;

INSERT INTO operation_devices
SELECT operation_id, track, device_id, app_id, state, result,
       CASE WHEN result = 'FAIL' THEN 'E' || (device_id::text COLLATE "C" > 'dev-005')::int END,
       CASE WHEN result = 'FAIL' THEN 'why' END, '2.0', '1.0', now(), last_position, now()
FROM device_tracks;
-- An older rollout that every software device went through.
INSERT INTO operation_devices
SELECT 'op-old', 'software', device_id, app_id, 'idle', 'SUCCESS', NULL, NULL, '1.0', '1.0',
       now(), 1, now()
FROM devices;

-- An IoTDA task (issue 24) over every third device's firmware: most subtasks done, a fifth
-- busy (Waitting, Processing, FailWaitRetry) since up to ten hours ago.
INSERT INTO operation_devices
SELECT 'task-iot', 'firmware', device_id, app_id, s.state,
       CASE s.state WHEN 'Success' THEN 'SUCCESS' WHEN 'Fail' THEN 'FAIL' ELSE '' END,
       CASE WHEN s.state = 'Fail' THEN 'E-IOT' END, CASE WHEN s.state = 'Fail' THEN 'why' END,
       NULL, NULL, now(), i, now() - (i % 1000) * interval '1 second',
       now() - ((i % 600) * interval '1 minute')
FROM (SELECT row_number() OVER (ORDER BY device_id) AS i, device_id, app_id FROM devices) AS d
CROSS JOIN LATERAL (SELECT CASE
    WHEN i % 100 < 75 THEN 'Success' WHEN i % 100 < 80 THEN 'Fail' WHEN i % 100 < 87 THEN 'Waitting'
    WHEN i % 100 < 95 THEN 'Processing' ELSE 'FailWaitRetry' END) AS s(state)
WHERE i % 3 = 0;

INSERT INTO operations
SELECT operation_id, track, min(app_id), max(app_id), count(*), 0, 0, 0, 0, 0, 0, now(),
       now() - (hashtext(operation_id) % 1000) * interval '1 minute'
FROM operation_devices GROUP BY operation_id, track;
INSERT INTO operations
SELECT 'past-' || i, CASE WHEN i % 3 = 0 THEN 'firmware' ELSE 'software' END, 'app-' || (i % 4),
       'app-' || (i % 4), 10, 10, 0, 0, 0, 10, 0, now(), now() - i * interval '1 hour'
FROM generate_series(1, 3000) i;

-- Three transitions per track, positions interleaved across the fleet as deliveries arrive.
INSERT INTO device_transitions
SELECT device_id, 2 * (last_position + k * {DEVICES}) + (track = 'firmware')::int, track, NULL,
       'idle', true, operation_id, 's',
       now(), 'state', true, false, NULL, NULL
FROM device_tracks CROSS JOIN generate_series(0, 2) AS k;
INSERT INTO task_transitions
SELECT 'task-' || lpad(i::text, 6, '0'), 7 * {DEVICES} + i, NULL, 'Waitting', true, true, now(),
       NULL, now()
FROM generate_series(1, 20000) i;

-- Guards' alerts changing, over the small rollouts: the live feed reads them by position too.
INSERT INTO alert_transitions
SELECT 8 * {DEVICES} + i, 'guard-' || (i % 5), 'op-' || (i % 500), 'software', 'app-1', i,
       (ARRAY['firing', 'resolved'])[1 + i % 2], i % 7, 3, now(), now()
FROM generate_series(1, 20000) i;

INSERT INTO tasks
SELECT 'task-' || lpad(i::text, 6, '0'), 'app-' || (i % 4),
       (ARRAY['firmwareUpgrade', 'softwareUpgrade'])[1 + i % 2],
       (ARRAY['Initializing', 'Waitting', 'Processing', 'Success', 'PartialSuccess', 'Fail',
              'Stopped', 'Stopping'])[1 + i % 8],
       'd', now(), NULL, '[]', i, now(), true, NULL, '[]'
FROM generate_series(1, 20000) i;
INSERT INTO tasks VALUES ('task-iot', 'app-1', 'firmwareUpgrade', 'Processing', NULL, now(), NULL,
    '[]', 1, now(), true, now(), '[]',
    '{{"total": 33333, "processing": 2667, "success": 25000, "fail": 1667, "waitting": 2333,
      "fail_wait_retry": 1666, "stopped": 0, "removed": 0}}',
    now(), '["Processing"]', '["Processing"]');
"""  # noqa: S608 - a constant of this test


@pytest.fixture(scope="module")
def fleet_url(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server)

    async def populate() -> None:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn)
            await conn.execute(FLEET)
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()

    asyncio.run(populate())
    yield url
    drop_database(url)


def subsets(names: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for size in range(len(names) + 1):
        yield from itertools.combinations(names, size)


VALUES: dict[str, object] = {
    "track": "software",
    "state": "downloading",
    "result": "FAIL",
    "app_id": "app-1",
    "operation_id": "op-big",
    "error_code": "E1",
    "status": "Success",
    "task_type": "firmwareUpgrade",
    "stuck_for": 3600.0,
}
# Values a listing takes instead of the above: an IoTDA task's members, for its busy listing.
OVERRIDES: dict[str, dict[str, object]] = {"members_stuck": {"operation_id": "task-iot"}}
DEEP: dict[str, tuple[Any, ...]] = {  # a key from the middle of each listing
    "devices": ("dev-0050000",),
    "device_tracks": ("dev-0050000",),
    "stuck": (NOW - timedelta(hours=5), "dev-0050000"),
    "operation_devices": ("dev-0050000", "software"),
    "members_stuck": (NOW - timedelta(hours=5), "dev-0050001", "firmware"),
    "operations": (NOW - timedelta(hours=1000), "past-1000", "software"),
    "tasks": ("task-010000",),
}


def cases() -> Iterator[tuple[str, Listing, dict[str, object], str]]:
    device_filters = ("state", "result", "app_id", "operation_id")
    lists = [
        ("devices", queries.DEVICES_BY_ID, (), ("app_id",)),
        ("device_tracks", queries.TRACKS_BY_ID, ("track",), device_filters),
        ("stuck", queries.TRACKS_STUCK, ("track", "stuck_for"), device_filters),
        ("operation_devices", rollups.MEMBERS, ("operation_id",), ("track", "state", "result")),
        ("operation_devices", rollups.MEMBERS, ("operation_id", "error_code"), ("track", "state")),
        ("members_stuck", rollups.MEMBERS_STUCK, ("operation_id", "stuck_for"), ("track",)),
        ("operations", rollups.OPERATIONS_BY_ACTIVITY, (), ("track", "app_id")),
        ("tasks", queries.TASKS_BY_ID, (), ("status", "task_type", "app_id")),
    ]
    for name, listing, always, optional in lists:
        for chosen in subsets(optional):
            values = VALUES | OVERRIDES.get(name, {})
            filters = {f: values[f] for f in (*always, *chosen)}
            yield name, listing, filters, "+".join((*always[1:], *chosen)) or "-"


CASES = list(cases())


@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "deep-page"])
@pytest.mark.parametrize(
    ("name", "listing", "filters"),
    [(n, listing, f) for n, listing, f, _ in CASES],
    ids=[f"{n}[{label}]" for n, _, _, label in CASES],
)
async def test_a_page_reads_about_a_page(
    fleet_url: str,
    name: str,
    listing: Listing,
    filters: dict[str, Any],  # a value per filter, of the type its DeviceFilter field takes
    deep: bool,
) -> None:
    if listing in (queries.TRACKS_BY_ID, queries.TRACKS_STUCK):  # as the server plans it
        database = await Database.open(fleet_url, timeout=10, size=1)
        try:
            planned = await queries.device_page(database, queries.DeviceFilter(**filters))
        finally:
            await database.close()
        assert planned is not None
        assert planned[0] is listing
        filters = planned[1]
    query = listing.query(frozenset(filters), resumed=deep)
    args = query.args(filters, DEEP[name] if deep else (), LIMIT)
    conn = await asyncpg.connect(fleet_url)
    try:
        plan = await explain(conn, query.sql, args)
    finally:
        await conn.close()
    nodes = list(walk(plan["Plan"]))
    kinds = {n["Node Type"] for n in nodes}
    assert not kinds & {"Seq Scan", "Bitmap Heap Scan", "Hash Join"}, kinds
    sorted_rows = [n["Actual Rows"] * n["Actual Loops"] for n in nodes if n["Node Type"] == "Sort"]
    assert all(rows <= LIMIT for rows in sorted_rows), sorted_rows
    walked = {n["Index Name"] for n in nodes if "Index Name" in n}
    assert walked <= {i.name for i in listing.indexes}, walked
    assert query.index.name in walked or len(walked) == 1, (walked, query.index.name)
    read = sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"]
        for n in nodes
        if "Index Name" in n
    )
    # Merged lazily, the branches read about a page between them; appended and sorted, each
    # reads at most a page. Either way the bound is the page's, whatever the fleet's size.
    allowed = LIMIT * query.branches + 2 * LIMIT
    shown = [(n["Node Type"], n.get("Index Name"), n["Actual Rows"]) for n in nodes]
    assert read <= allowed, f"read {read} rows for a page of {LIMIT}: {shown}"


async def explain(conn: asyncpg.Connection, sql: str, args: list[Any]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the statement, as the server runs it: a prepared statement planned
    for the values of each execution."""
    async with conn.transaction():
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        await conn.execute(f"PREPARE page AS {sql}")
        try:
            text = await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE page({', '.join(map(literal, args))})"
            )
        finally:
            await conn.execute("DEALLOCATE page")
    plan: dict[str, Any] = json.loads(text)[0]
    return plan


def literal(value: object) -> str:
    if isinstance(value, list):
        return f"ARRAY[{', '.join(map(literal, value))}]"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'::timestamptz"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def executed(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's nodes that ran (a CASE's other branch is planned, never executed)."""
    return [n for n in walk(plan["Plan"]) if n.get("Actual Loops", 0) > 0]


def rows_read(nodes: list[dict[str, Any]]) -> int:
    return sum(
        (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n["Actual Loops"]
        for n in nodes
        if "Index Name" in n
    )


@pytest.mark.parametrize(
    ("operation_id", "track", "iotda", "index"),
    [
        ("op-big", "software", False, "device_tracks_stuck_by_operation"),
        ("task-iot", "firmware", True, "operation_devices_busy"),
    ],
    ids=["oceanconnect", "iotda"],
)
async def test_a_rollups_stuck_count_reads_its_busy_devices_alone(
    fleet_url: str, operation_id: str, track: str, iotda: bool, index: str
) -> None:
    """?stuck_for= on an operation counts over that operation's busy range of one index."""
    conn = await asyncpg.connect(fleet_url)
    try:
        plan = await explain(conn, rollups.STUCK, [[operation_id], [track], [iotda], 3600.0])
        counted = await conn.fetchval(rollups.STUCK, [operation_id], [track], [iotda], 3600.0)
        busy = await conn.fetchval(
            "SELECT count(*) FROM operation_devices WHERE operation_id = $1 AND track = $2 "
            "AND state IN ('Waitting', 'Processing', 'FailWaitRetry', 'downloading', "
            "'downloaded', 'updating')",
            operation_id,
            track,
        )
    finally:
        await conn.close()
    nodes = executed(plan)
    assert "Seq Scan" not in {n["Node Type"] for n in nodes}
    assert {n["Index Name"] for n in nodes if "Index Name" in n} == {index}
    assert 0 < counted <= rows_read(nodes) <= busy  # its busy devices, never the fleet


async def test_a_devices_iotda_tasks_are_read_from_their_own_index(fleet_url: str) -> None:
    numbers = range(50_001, 50_001 + LIMIT)
    page = [f"dev-{i:07d}" for i in numbers]
    conn = await asyncpg.connect(fleet_url)
    try:
        plan = await explain(conn, queries.DEVICE_TASKS, [page])
        found = await conn.fetch(queries.DEVICE_TASKS, page)
    finally:
        await conn.close()
    nodes = executed(plan)
    assert "Seq Scan" not in {n["Node Type"] for n in nodes}
    assert {n["Index Name"] for n in nodes if "Index Name" in n} == {"operation_devices_by_device"}
    assert len(found) == sum(1 for i in numbers if i % 3 == 0)  # those in the IoTDA task
    assert rows_read(nodes) <= 2 * LIMIT


async def test_a_page_of_rollups_reads_its_iotda_tasks_by_key(fleet_url: str) -> None:
    """Whether a rollup is an IoTDA task, and what its task says: one key lookup per rollup of
    the page, never a scan or a join of the tasks."""
    query = rollups.OPERATIONS_BY_ACTIVITY.query(frozenset(), resumed=False)
    sql = rollups.WITH_DETAILS.format(
        top=rollups.TOP_ERRORS, rows=rollups.OPERATIONS_BY_ACTIVITY.rows(query)
    )
    conn = await asyncpg.connect(fleet_url)
    try:
        plan = await explain(conn, sql, query.args({}, (), LIMIT))
    finally:
        await conn.close()
    tasks = [n for n in executed(plan) if n.get("Relation Name") == "tasks"]
    assert [(n["Node Type"], n["Index Name"], n["Actual Loops"]) for n in tasks] == [
        ("Index Scan", "tasks_pkey", LIMIT)
    ]
    assert tasks[0]["Actual Rows"] <= 1


HORIZON = 2**62  # no append in flight: the page ends where the log does


@pytest.mark.parametrize(
    ("sql", "args", "index"),
    [
        (feed.PAGE, (DEVICES, LIMIT, HORIZON), "device_transitions_by_position"),
        (
            feed.OPERATION_PAGE,
            (DEVICES, LIMIT, HORIZON, "op-7"),
            "device_transitions_by_operation",
        ),
        (feed.DEVICE_PAGE, (0, LIMIT, HORIZON, "dev-0000007"), "device_transitions_pkey"),
    ],
    ids=["everything", "one-operation", "one-device"],
)
async def test_the_live_feed_reads_about_a_page(
    fleet_url: str, sql: str, args: tuple[object, ...], index: str
) -> None:
    conn = await asyncpg.connect(fleet_url)
    try:
        plan = await explain(conn, sql, list(args))
    finally:
        await conn.close()
    nodes = list(walk(plan["Plan"]))
    assert "Seq Scan" not in {n["Node Type"] for n in nodes}
    assert index in {n.get("Index Name") for n in nodes}
    read = sum(n["Actual Rows"] * n["Actual Loops"] for n in nodes if "Index Name" in n)
    assert 0 < read <= 2 * LIMIT


async def test_the_server_plans_every_statement_for_its_values(database_url: str) -> None:
    database = await Database.open(database_url, timeout=10, size=1)
    try:
        row = await database.fetchrow("settings", "SHOW plan_cache_mode")
    finally:
        await database.close()
    assert row is not None
    assert row[0] == "force_custom_plan"
