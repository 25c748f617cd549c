"""Replay equals live: property-tested through the real database, under concurrent ingestion."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, get_args

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.histories import draw_history, expected_tracks
from tests.support.legacy_log import append_body_only
from tests.support.waiting import until
from tracker.config import Settings
from tracker.domain.delivery import decode
from tracker.domain.notifications import TaskStatus, UpgradeState
from tracker.domain.suboperation import PROGRESS
from tracker.store import ingestion, rejected, rollups
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit
from tracker.store.migrations import migrate, sql_dir
from tracker.store.replay import replay
from tracker.store.rows import DEVICE_TRACKS
from tracker.store.startup import open_migrated

STATES = ["idle", "downloading", "downloaded", "updating"]
UPGRADE_STATES: tuple[UpgradeState, ...] = ("idle", "downloading", "downloaded", "updating")
STATUSES: tuple[str, ...] = get_args(TaskStatus)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def device_body(
    prefix: str,
    device: int,
    kind: str,
    value: str,
    op: int,
    sub: int = 0,
    said: str | None = "",
    versions: bool = True,
) -> dict[str, object]:
    """A device notification. `said`: the firmware stepDesc ("": the step's own state; None: not
    sent; else what it says, which may disagree); `versions`: whether a result carries them."""
    base = {
        "deviceId": f"{prefix}-d{device}",
        "appId": "app",
        "operationId": f"{prefix}-op{op}",
        "subOperationId": f"s{sub}" if sub else "s",
    }
    if kind == "sw":
        return {"notifyType": "swUpgradeStateChangeNotify", "swUpgradeState": value, **base}
    if kind == "fw":
        step = str(STATES.index(value))
        body: dict[str, object] = {
            "notifyType": "fwUpgradeStateChangeNotify",
            "step": step,
            **base,
        }
        return body if said is None else {**body, "stepDesc": said or value}
    notify = "swUpgradeResultNotify" if kind == "swr" else "fwUpgradeResultNotify"
    result = "SUCCESS" if value in {"idle", "downloaded"} else "FAIL"
    body = {"notifyType": notify, "upgradeTime": 5, **base}
    if versions:
        body |= {
            "curVersion": f"v{op}",
            "targetVersion": f"v{STATES.index(value) % 2}",
            "sourceVersion": "v0",
        }
    if kind == "swr":
        return {
            **body,
            "swUpgradeResult": result,
            "resultDesc": f"r{device % 2}",
            "errorCode": f"E{STATES.index(value)}",
        }
    return {**body, "status": result, "statusDesc": f"s{device % 2}"}


def task_body(
    prefix: str,
    task: int,
    status: str,
    second: int,
    request: int | None,
    ms: bool,
    millis: int = 0,
    task_type: str = "firmwareUpgrade",
) -> dict[str, object]:
    when = T0 + timedelta(seconds=second, milliseconds=millis)
    body: dict[str, object] = {
        "resource": "batchtask",
        "event": "update",
        "event_time": when.strftime("%Y%m%dT%H%M%SZ"),
        "notify_data": {
            "body": {
                "app_id": "app",
                "task_id": f"{prefix}-t{task}",
                "task_type": task_type,
                "status": status,
            }
        },
    }
    if ms:
        body["event_time_ms"] = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis:03d}Z"
    if request is not None:
        body["request_id"] = f"{prefix}-r{request}"
    return body


# The first item of each step tags its kind; the rest are the arguments of its body's function.
DeviceStep = tuple[Literal["device"], int, str, str, int, int, str | None, bool]
TaskStep = tuple[Literal["task"], int, str, int, int | None, bool, int, str]
ReadmitStep = tuple[Literal["readmit"], DeviceStep, int]
Step = DeviceStep | TaskStep | ReadmitStep | int

device_events: st.SearchStrategy[DeviceStep] = st.tuples(
    st.just("device"),
    st.integers(0, 2),
    st.sampled_from(["sw", "fw", "swr", "fwr"]),
    st.sampled_from(STATES),
    st.integers(0, 1),  # operation
    st.integers(0, 1),  # sub-operation: late re-pushes within one, new ones across
    st.one_of(st.just(""), st.none(), st.sampled_from(STATES)),  # stepDesc
    st.booleans(),  # versions in a result
)
task_events: st.SearchStrategy[TaskStep] = st.tuples(
    st.just("task"),
    st.integers(0, 1),
    st.sampled_from(STATUSES),
    st.integers(0, 60),
    st.one_of(st.none(), st.integers(0, 5)),
    st.booleans(),  # event_time_ms sent (to the millisecond) or only event_time (to the second)
    st.sampled_from([0, 500]),
    st.sampled_from(["firmwareUpgrade", "softwareUpgrade", "createDevices"]),
)
# A delivery readmitted from `rejected`: received that many seconds before it is appended.
readmissions: st.SearchStrategy[ReadmitStep] = st.tuples(
    st.just("readmit"), device_events, st.integers(0, 120)
)
# Each step is a new event or a re-delivery of an earlier one (by index): retries are normal.
steps: st.SearchStrategy[list[Step]] = st.lists(
    st.one_of(device_events, task_events, readmissions, st.integers(0, 40)),
    min_size=1,
    max_size=40,
)
Delivery = tuple[bytes, int | None]  # the body; seconds before now it was received, if readmitted


def bodies_of(prefix: str, plan: list[Step]) -> list[Delivery]:
    bodies: list[Delivery] = []
    for step in plan:
        if isinstance(step, int):
            if bodies:
                bodies.append((bodies[step % len(bodies)][0], None))
            continue
        if step[0] == "readmit":
            bodies.append((json.dumps(device_body(prefix, *step[1][1:])).encode(), step[2]))
            continue
        if step[0] == "device":
            body = device_body(prefix, *step[1:])
        else:
            body = task_body(prefix, *step[1:])
        bodies.append((json.dumps(body).encode(), None))
    return bodies


async def ingest_one_by_one(url: str, bodies: list[Delivery]) -> None:
    database = await Database.open(url, timeout=10, size=2)
    try:
        for raw, ago in bodies:
            event, now = decode(raw), datetime.now(UTC)
            if ago is not None:  # as `tracker readmit` appends it: its refusal's id and time
                now -= timedelta(seconds=ago)
                refusal = rejected.Rejection(422, "refused", "then", [], raw)
                event = replace(
                    event, readmitted_from=await rejected.keep(database, refusal, now, 64)
                )
            async with database.transaction("append") as conn:
                await ingestion.ingest(conn, [event], now)
    finally:
        await database.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=steps)
def test_random_histories_replay_to_the_live_projections(
    database_url: str, plan: list[Step]
) -> None:
    bodies = bodies_of(secrets.token_hex(4), plan)

    async def scenario() -> list[str]:
        await ingest_one_by_one(database_url, bodies)
        return (await replay(database_url, check=True)).drift

    assert asyncio.run(scenario()) == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rng=st.randoms(use_true_random=False), data=st.data())
def test_histories_in_any_order_and_batching_replay_to_what_they_say(
    database_url: str, rng: random.Random, data: st.DataObject
) -> None:
    """Device histories the platforms can produce (tests/support/histories.py), several devices
    at once, delivered in a random order, some readmitted, appended in random batches: the
    live tables are what the deliveries say, and replay rebuilds exactly them."""
    prefix = secrets.token_hex(4)
    histories = [
        draw_history(rng, f"{prefix}-d{n}", tracks=("software", "firmware"), operations=(1, 3))
        for n in range(3)
    ]
    deliveries = [d for h in histories for d in h.deliveries()]
    order = data.draw(st.permutations(range(len(deliveries))))
    cuts = data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=10))
    readmitted = data.draw(st.sets(st.sampled_from(range(len(deliveries))), max_size=3))

    async def scenario() -> tuple[list[str], list[asyncpg.Record]]:
        database = await Database.open(database_url, timeout=10, size=2)
        try:
            start, size = 0, iter(cuts * len(deliveries))
            while start < len(order):
                batch = order[start : start + next(size)]
                start += len(batch)
                events = [decode(deliveries[i].model_dump_json().encode()) for i in batch]
                now = datetime.now(UTC)
                times = [now - timedelta(minutes=5 * (i in readmitted)) for i in batch]
                async with database.transaction("append") as conn:
                    await ingestion.ingest(conn, events, times)
            tracks = await database.pool.fetch(
                "SELECT * FROM device_tracks WHERE device_id LIKE $1", f"{prefix}-%"
            )
        finally:
            await database.close()
        return (await replay(database_url, check=True)).drift, tracks

    drift, rows = asyncio.run(scenario())
    assert drift == []
    by_device = {h.runs[0].device: h for h in histories}
    assert len(rows) == sum(len({r.track for r in h.runs}) for h in histories)
    for row in rows:
        track = DEVICE_TRACKS.from_row(row)
        shown = (track.app_id, track.state, track.operation_id, track.sub_operation_id)
        expected = expected_tracks(by_device[track.device_id], track.track)
        assert shown in {(v.app_id, v.state, v.operation_id, v.sub_operation_id) for v in expected}


async def test_replay_swaps_in_while_ingestion_goes_on(
    database_url: str, database: Database
) -> None:
    stop = asyncio.Event()
    sent: dict[str, UpgradeState] = {}
    appended = 0

    async def ingest(worker: int) -> None:
        nonlocal appended
        step = 0
        while not stop.is_set() or step < 8:
            device = f"w{worker}-d{step % 5}"
            state: UpgradeState = UPGRADE_STATES[(step // 5) % 4]
            raw = json.dumps(device_body("live", 0, "sw", state, 0) | {"deviceId": device}).encode()
            async with database.transaction("append") as conn:
                await ingestion.ingest(conn, [decode(raw)], datetime.now(UTC))
            # One sub-operation: it shows the furthest state reported (idle ends it).
            sent[device] = max(state, sent.get(device, state), key=PROGRESS.__getitem__)
            step += 1
            appended += 1

    writers = [asyncio.create_task(ingest(w)) for w in range(4)]
    await until(lambda: appended >= 40, "the writers to append 40 events before the replay")
    outcome = await replay(database_url, check=False)
    assert outcome.pause_ms is not None
    swapped = appended
    await until(lambda: appended >= swapped + 40, "40 more appends after the swap")
    assert not any(writer.done() for writer in writers)  # ingestion went on throughout
    stop.set()
    await asyncio.gather(*writers)

    assert (await replay(database_url, check=True)).drift == []
    rows = await database.pool.fetch(
        "SELECT device_id, state FROM device_tracks WHERE track = 'software'"
    )
    assert {r["device_id"]: r["state"] for r in rows} == sent


async def test_replay_ends_while_appends_never_pause(database_url: str, database: Database) -> None:
    """Two batches always in flight, from 64 writers that never stop, all through the replay:
    it ends (each catch-up pass stops at the horizon it began with), and it equals live."""
    stop = asyncio.Event()
    committed: list[int] = []
    appends = GroupCommit(database, on_commit=committed.append)

    async def ingest(worker: int) -> None:
        step = 0
        while not stop.is_set():
            raw = device_body("busy", 0, "sw", STATES[step % 4], 0) | {"deviceId": f"b{worker}"}
            await appends.append(decode(json.dumps(raw).encode()))
            step += 1

    writers = [asyncio.create_task(ingest(w)) for w in range(64)]
    try:
        await until(lambda: len(committed) >= 4, "the appends to be under way (4 batches)")
        outcome = await asyncio.wait_for(replay(database_url, check=False), 60)
        assert outcome.pause_ms is not None
        assert not any(writer.done() for writer in writers)  # the appends never paused
    finally:
        stop.set()
        await asyncio.gather(*writers)
        await appends.close()
    assert (await replay(database_url, check=True)).drift == []


async def test_check_names_every_drifted_row(
    database_url: str, database: Database, examples: dict[str, bytes]
) -> None:
    for raw in examples.values():
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, [decode(raw)], datetime.now(UTC))
    await database.pool.execute(
        "UPDATE device_tracks SET state = 'updating' WHERE track = 'software'"
    )
    await database.pool.execute("DELETE FROM task_transitions")
    drift = (await replay(database_url, check=True)).drift
    assert any(
        "device_tracks" in line and "state: live 'updating', replay 'downloading'" in line
        for line in drift
    )
    assert any(
        line.startswith("task_transitions") and "missing from the live table" in line
        for line in drift
    )
    # A replay repairs it.
    await replay(database_url, check=False)
    assert (await replay(database_url, check=True)).drift == []


async def test_replay_of_an_empty_log(database_url: str) -> None:
    outcome = await replay(database_url, check=False)
    assert outcome.events == 0
    assert (await replay(database_url, check=True)).drift == []


async def test_replay_keeps_the_log_and_rejected_untouched(
    database_url: str, database: Database, examples: dict[str, bytes]
) -> None:
    for raw in examples.values():
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, [decode(raw)], datetime.now(UTC))
    before = await database.pool.fetch("SELECT * FROM events ORDER BY position")
    await replay(database_url, check=False)
    assert await database.pool.fetch("SELECT * FROM events ORDER BY position") == before
    conn = await asyncpg.connect(database_url)
    try:
        schemas = await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tracker_%'"
        )
        assert schemas == []
    finally:
        await conn.close()


async def test_a_replay_split_across_processes_equals_live(
    database_url: str, database: Database
) -> None:
    """Partitions by stream in their own processes, one exported snapshot: same rows as live."""
    rng = random.Random(7)
    bodies: list[dict[str, object]] = []
    for _ in range(600):
        if rng.random() < 0.2:
            bodies.append(
                task_body(
                    "split",
                    rng.randrange(8),
                    rng.choice(STATUSES),
                    rng.randrange(60),
                    rng.choice([None, rng.randrange(20)]),
                    rng.random() < 0.5,
                )
            )
        else:
            bodies.append(
                device_body(
                    "split",
                    rng.randrange(40),
                    rng.choice(["sw", "fw", "swr", "fwr"]),
                    rng.choice(STATES),
                    rng.randrange(2),
                )
            )
    events = [decode(json.dumps(body).encode()) for body in bodies]
    for start in range(0, len(events), 7):  # several deliveries per transaction, like live
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, events[start : start + 7], datetime.now(UTC))

    checked = await replay(database_url, check=True, parts=3)
    assert (checked.parts, checked.events, checked.drift) == (3, 600, [])
    swapped = await replay(database_url, check=False, parts=2)
    assert (swapped.parts, swapped.events) == (2, 600)
    assert swapped.rows["device_transitions"] > 0
    assert swapped.rows["task_transitions"] > 0
    assert (await replay(database_url, check=True, parts=1)).drift == []


async def test_a_migration_that_replaces_projections_rebuilds_them_from_the_log(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Upgrading a database with history: the new tables are filled before anyone reads them."""
    older = tmp_path / "sql"
    older.mkdir()
    for path in sorted(sql_dir().glob("*.sql")):
        if path.name < "008":
            shutil.copy(path, older / path.name)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, older)
        bodies = [
            json.dumps(device_body("up", device, "sw", state, 0)).encode()
            for state in STATES[1:]  # an upgrade under way: downloading, downloaded, updating
            for device in range(3)
        ]
        async with conn.transaction():  # what the append of 007 wrote (bodies stored raw)
            await append_body_only(conn, [decode(raw) for raw in bodies], datetime.now(UTC))
    finally:
        await conn.close()

    database = await open_migrated(empty_database_url, Settings(database_url=empty_database_url))
    try:
        rollup = await rollups.operation(database, "up-op0")
        tracks = await database.pool.fetchval("SELECT count(*) FROM device_tracks")
    finally:
        await database.close()
    assert rollup is not None
    assert (rollup.devices, rollup.states) == (3, {"updating": 3})
    assert tracks == 3
    assert (await replay(empty_database_url, check=True)).drift == []


async def test_the_tables_swapped_in_keep_their_indexes_and_statistics(
    database_url: str, database: Database
) -> None:
    """The planner needs both: replay builds them in scratch space and moves them in."""
    before = await database.pool.fetch(INDEXES_AND_STATISTICS)
    async with database.transaction("append") as conn:
        raw = json.dumps(device_body("stats", 1, "sw", "downloading", 0)).encode()
        await ingestion.ingest(conn, [decode(raw)], datetime.now(UTC))
    await replay(database_url, check=False)
    after = await database.pool.fetch(INDEXES_AND_STATISTICS)
    assert after == before
    assert {row["name"] for row in after} >= {"device_tracks_by_state", "device_tracks_states"}
    analyzed = await database.pool.fetch(
        "SELECT s.stxname FROM pg_statistic_ext s JOIN pg_statistic_ext_data d ON d.stxoid = s.oid"
        " WHERE s.stxnamespace = 'public'::regnamespace ORDER BY 1"
    )
    # Replay analyzed them before the swap (tasks: an empty table has nothing to analyze).
    assert [row[0] for row in analyzed] == [
        "device_tracks_operation_states",
        "device_tracks_states",
        "operation_devices_states",
    ]


INDEXES_AND_STATISTICS = """
SELECT 'index' AS kind, indexname AS name, indexdef AS definition FROM pg_indexes
WHERE schemaname = 'public'
UNION ALL
SELECT 'statistics', stxname, pg_get_statisticsobjdef(oid) FROM pg_statistic_ext
WHERE stxnamespace = 'public'::regnamespace
ORDER BY 1, 2
"""
