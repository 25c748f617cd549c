"""The guards in the store (tracker/store/alerting.py, tracker/alerts/): an alert agrees with
its rollout's counters whatever order the deliveries came in; time alone fires `stuck_above`
and `silent_for` (the clock); a firing guard on an IoTDA task stops it through StopBatchTask
(against the fake of IoTDA's API), and what came of the call is in the log and the alert."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testkit.postgres import create_database, drop_database, url_of_server
from tests.support.cli import tracker
from tests.support.fake_iotda import FakeIoTDA
from tracker import metrics
from tracker.alerts import stopper
from tracker.alerts.clock import Clock
from tracker.alerts.stopper import NO_CREDENTIALS, Stopper
from tracker.domain.delivery import decode
from tracker.domain.guards import Definition, Facts, FailedAbove, read
from tracker.iotda.api import PlatformApi
from tracker.iotda.budget import Budget
from tracker.iotda.credentials import Credentials
from tracker.iotda.reconciler import Reconciler
from tracker.store import alerting, events, guard_changes, ingestion
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit

pytestmark = pytest.mark.asyncio
OPERATIONS = itertools.count()


async def put(database: Database, name: str, **document: Any) -> None:
    await guard_changes.put(database, name, Definition.model_validate(document))


def report(device: str, op: str, sub: str, **fields: str) -> bytes:
    body = {"deviceId": device, "appId": "app-1", "operationId": op, "subOperationId": sub}
    return orjson.dumps(body | fields)


def fail_or_succeed(device: str, op: str, sub: str, outcome: str) -> bytes:
    fields = {"notifyType": "swUpgradeResultNotify", "swUpgradeResult": outcome}
    return report(device, op, sub, errorCode="E1" if outcome == "FAIL" else "0", **fields)


def downloading(device: str, op: str, sub: str = "s-1") -> bytes:
    return report(
        device, op, sub, notifyType="swUpgradeStateChangeNotify", swUpgradeState="downloading"
    )


async def deliver(database: Database, raw: bytes) -> None:
    async with database.transaction("deliver") as conn:
        await ingestion.ingest(conn, [decode(raw)])


async def row(database: Database, sql: str, *args: object) -> dict[str, Any] | None:
    found = await database.fetchrow("read", sql, *args)
    return None if found is None else dict(found)


async def alert_of(database: Database, guard: str, op: str) -> dict[str, Any] | None:
    return await row(
        database, "SELECT * FROM alerts WHERE guard = $1 AND operation_id = $2", guard, op
    )


# Each device's results, in the order the platform meant them (its sub-operations), then
# delivered in any order at all.
HISTORIES = st.lists(
    st.lists(st.sampled_from(["FAIL", "SUCCESS"]), min_size=1, max_size=3), min_size=1, max_size=6
).flatmap(
    lambda devices: st.permutations(
        [
            (f"d-{d}", f"s-{n}", outcome)
            for d, outcomes in enumerate(devices)
            for n, outcome in enumerate(outcomes)
        ]
    )
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(history=HISTORIES)
async def test_an_alert_agrees_with_its_rollout_whatever_the_order(
    database: Database, history: list[tuple[str, str, str]]
) -> None:
    """Deliveries permuted: the alert's state is the condition read on the rollout's final
    counters, and it changed an odd number of times exactly when it is firing."""
    if await row(database, "SELECT name FROM guards WHERE name = 'two'") is None:
        await put(database, "two", when={"failed_above": 1})
    op = f"op-{next(OPERATIONS)}"
    for device, sub, outcome in history:
        await deliver(database, fail_or_succeed(device, op, sub, outcome))
    counts = await row(database, "SELECT * FROM operations WHERE operation_id = $1", op)
    assert counts is not None
    facts = Facts(
        counts["success"],
        counts["fail"],
        0,
        frozenset(),
        counts["last_activity_at"],
        counts["last_activity_at"],
    )
    firing = read(FailedAbove(failed_above=1), facts).firing
    alert = await alert_of(database, "two", op)
    if alert is None:
        assert not firing
        return
    assert alert["state"] == ("firing" if firing else "resolved")
    assert alert["changes"] % 2 == (1 if firing else 0)
    changes = await row(
        database,
        "SELECT count(*) AS n, count(DISTINCT number) AS numbers FROM alert_transitions "
        "WHERE guard = 'two' AND operation_id = $1",
        op,
    )
    assert changes == {"n": alert["changes"], "numbers": alert["changes"]}


async def test_a_delivery_that_rolls_back_records_and_sends_nothing(database: Database) -> None:
    await put(
        database,
        "any-failure",
        when={"failed_above": 0},
        webhook={"url": "https://hooks.example.com/x", "secret": "s" * 20},
    )

    async def rolled_back() -> None:
        async with database.transaction("rolled back") as conn:
            await ingestion.ingest(conn, [decode(fail_or_succeed("d-1", "op-rb", "s-1", "FAIL"))])
            assert await conn.fetchval("SELECT count(*) FROM webhook_outbox") == 1
            raise RuntimeError("the append fails after the alert was decided")

    with pytest.raises(RuntimeError):
        await rolled_back()
    assert await alert_of(database, "any-failure", "op-rb") is None
    assert await row(database, "SELECT count(*) AS n FROM webhook_outbox") == {"n": 0}
    assert await row(database, "SELECT count(*) AS n FROM events") == {"n": 0}


async def test_the_clock_fires_silence_and_stuck_devices_and_a_delivery_resolves_them(
    database: Database,
) -> None:
    await put(database, "quiet", when={"silent_for": 1})
    await put(database, "stuck", when={"stuck_above": 1, "stuck_for": 1})
    for device in ("d-1", "d-2"):
        await deliver(database, downloading(device, "op-busy"))
    await deliver(database, fail_or_succeed("d-3", "op-done", "s-1", "SUCCESS"))  # not busy
    clock = Clock(database, every=0.1)
    assert await clock.tick() == 0  # busy, but not for long yet
    await asyncio.sleep(1.2)

    assert await clock.tick() == 2
    quiet, stuck = (
        await alert_of(database, "quiet", "op-busy"),
        await alert_of(database, "stuck", "op-busy"),
    )
    assert quiet is not None
    assert stuck is not None
    assert (quiet["state"], quiet["threshold"], quiet["value"] > 1) == ("firing", 1.0, True)
    assert (stuck["state"], stuck["value"], stuck["threshold"]) == ("firing", 2.0, 1.0)
    assert await alert_of(database, "quiet", "op-done") is None  # nothing busy: never silent
    assert await clock.tick() == 0  # still true: nothing changes twice

    await deliver(database, fail_or_succeed("d-1", "op-busy", "s-1", "SUCCESS"))
    stuck = await alert_of(database, "stuck", "op-busy")
    assert stuck is not None
    assert (stuck["state"], stuck["value"]) == ("resolved", 1.0)  # the append decided it
    quiet = await alert_of(database, "quiet", "op-busy")
    assert quiet is not None
    assert quiet["state"] == "resolved"  # it just moved: not silent


@pytest.fixture
async def iotda() -> AsyncIterator[FakeIoTDA]:
    async with FakeIoTDA() as fake:
        yield fake


async def observe(database: Database, fake: FakeIoTDA, task_id: str) -> None:
    appends = GroupCommit(database)
    try:
        async with api_of(fake) as api:
            await Reconciler(database, api, Budget(200.0), appends, ("app-1",)).once(task_id)
    finally:
        await appends.close()


def api_of(fake: FakeIoTDA) -> PlatformApi:
    return PlatformApi(Credentials(fake.endpoint, fake.project_id, fake.ak, fake.sk))


async def test_a_firing_guard_stops_the_iotda_task_and_records_what_came_of_it(
    database: Database, iotda: FakeIoTDA
) -> None:
    await put(
        database,
        "halt",
        scope={"platform": "iotda"},
        when={"failed_above": 1},
        stop_task=True,
    )
    task = iotda.create_task([f"dev-{i}" for i in range(10)], app_id="app-1")
    await observe(database, iotda, task.task_id)
    task.set(["dev-0", "dev-1"], "Fail", error=("IOTDA.014020", "device offline"))
    task.set(["dev-2", "dev-3"], "Processing")
    await observe(database, iotda, task.task_id)
    owed = await row(database, "SELECT * FROM guard_stops")
    assert owed is not None
    assert (owed["operation_id"], owed["state"], owed["number"]) == (task.task_id, "pending", 1)

    budget = Budget(1000.0)  # the reconciler's, shared
    async with api_of(iotda) as api:
        await Stopper(database, api, budget=budget).round()

    assert budget.spent == 2  # ShowBatchTask to confirm, then StopBatchTask: both counted
    assert task.status in ("Stopping", "Stopped")
    assert [c for c in iotda.calls if c.operation == "StopBatchTask"] != []
    alert = await alert_of(database, "halt", task.task_id)
    assert alert is not None
    stop = orjson.loads(alert["stop"])
    assert (alert["state"], stop["outcome"]) == ("firing", "stopping")
    logged = await row(
        database, "SELECT count(*) AS n FROM events WHERE event_type = 'alert.stopped'"
    )
    assert logged == {"n": 1}
    assert await row(database, "SELECT state FROM guard_stops") == {"state": "done"}
    async with api_of(iotda) as api:
        await Stopper(database, api).round()  # nothing owed any more: no second call
    assert len([c for c in iotda.calls if c.operation == "StopBatchTask"]) == 1


async def test_a_stop_the_platform_refuses_or_cannot_make_is_recorded_as_such(
    database: Database, iotda: FakeIoTDA
) -> None:
    await put(
        database, "halt", scope={"platform": "iotda"}, when={"failed_above": 0}, stop_task=True
    )
    ended = iotda.create_task(["dev-a"], app_id="app-1")
    ended.set("dev-a", "Fail", error=("E", "broken"))
    ended.finish()
    await observe(database, iotda, ended.task_id)
    async with api_of(iotda) as api:
        await Stopper(database, api).round()
    alert = await alert_of(database, "halt", ended.task_id)
    assert alert is not None
    stop = orjson.loads(alert["stop"])
    assert stop["outcome"] == "refused"
    assert "IOTDA.014126" in stop["detail"]

    other = iotda.create_task(["dev-b"], app_id="app-1")
    other.set("dev-b", "Fail", error=("E", "broken"))
    await observe(database, iotda, other.task_id)
    await Stopper(database, None).round()  # a server with no IoTDA credentials
    alert = await alert_of(database, "halt", other.task_id)
    assert alert is not None
    assert orjson.loads(alert["stop"]) | {"at": None} == {
        "outcome": "failed",
        "detail": NO_CREDENTIALS,
        "at": None,
    }


async def test_a_stop_waits_for_the_shared_budget_no_longer_than_half_its_lease(
    database: Database, iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget held (a long Retry-After, refused credentials) makes the stop a throttled
    one, tried again later, rather than a call made after another process claimed it."""
    monkeypatch.setattr(stopper, "LEASE", 2.0)  # half of it: a wait of a second at most
    await put(
        database, "halt", scope={"platform": "iotda"}, when={"failed_above": 0}, stop_task=True
    )
    task = iotda.create_task(["dev-a", "dev-b"], app_id="app-1")
    task.set("dev-a", "Fail", error=("E", "broken"))
    await observe(database, iotda, task.task_id)
    budget = Budget(1000.0)
    budget.hold(3600.0)
    calls = len(iotda.calls)
    async with api_of(iotda) as api:
        async with asyncio.timeout(10):
            await Stopper(database, api, budget=budget).round()

    assert iotda.calls[calls:] == []  # nothing asked while the budget is held
    assert task.status == "Processing"
    owed = await row(database, "SELECT state, attempts FROM guard_stops")
    assert owed == {"state": "pending", "attempts": 1}  # again, after a backoff


def errors() -> float:
    return metrics.REGISTRY.get_sample_value("tracker_guard_errors_total") or 0.0


async def test_a_failure_to_decide_never_fails_the_delivery(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deliveries come before alerts: a bug in deciding is logged and counted, the delivery
    commits, and the next decision (an append, or the clock) catches up."""
    await put(database, "any-failure", when={"failed_above": 0})

    def broken(*_: object) -> None:
        raise ZeroDivisionError("a bug in a condition")

    before = errors()
    monkeypatch.setattr(alerting, "decide", broken)
    await deliver(database, fail_or_succeed("d-1", "op-bug", "s-1", "FAIL"))
    assert errors() == before + 1
    assert await row(database, "SELECT count(*) AS n FROM events") == {"n": 1}
    assert await alert_of(database, "any-failure", "op-bug") is None
    assert await row(database, "SELECT count(*) AS n FROM webhook_outbox") == {"n": 0}

    monkeypatch.undo()
    await deliver(database, fail_or_succeed("d-2", "op-bug", "s-1", "FAIL"))
    alert = await alert_of(database, "any-failure", "op-bug")
    assert alert is not None
    assert (alert["state"], alert["value"], alert["changes"]) == ("firing", 2.0, 1)


async def test_a_push_forged_under_a_task_id_stops_nothing(
    database: Database, iotda: FakeIoTDA
) -> None:
    """Whoever holds the ingest token can make our counters say anything; a stop waits for
    IoTDA's own counters of the task to say it too."""
    await put(
        database, "halt", scope={"platform": "iotda"}, when={"failed_above": 1}, stop_task=True
    )
    task = iotda.create_task([f"dev-{i}" for i in range(4)], app_id="app-1")
    await observe(database, iotda, task.task_id)  # all Waitting: nothing failed
    for n in range(3):  # OceanConnect-shaped failures under the task's id
        await deliver(database, fail_or_succeed(f"forged-{n}", task.task_id, "s-1", "FAIL"))
    alert = await alert_of(database, "halt", task.task_id)
    assert alert is not None
    assert (alert["state"], alert["platform"]) == ("firing", "iotda")  # our counters believe it

    async with api_of(iotda) as api:
        await Stopper(database, api).round()

    assert [c.operation for c in iotda.calls if c.operation == "StopBatchTask"] == []
    assert task.status == "Processing"
    alert = await alert_of(database, "halt", task.task_id)
    assert alert is not None
    stop = orjson.loads(alert["stop"])
    assert stop["outcome"] == "unconfirmed"
    assert "fail 0 of 4" in stop["detail"]


async def test_replacing_a_guard_resolves_its_alerts_and_reads_them_again(
    database: Database,
) -> None:
    await put(database, "g", when={"failed_above": 0})
    await deliver(database, fail_or_succeed("d-1", "op-r", "s-1", "FAIL"))
    await deliver(database, fail_or_succeed("d-2", "op-q", "s-1", "FAIL"))
    await put(database, "g", when={"failed_above": 0})  # the same: it still holds
    await put(database, "g", scope={"operation_id": "op-r"}, when={"failed_above": 0})
    history = await database.fetch(
        "history",
        "SELECT operation_id, number, state FROM alert_transitions ORDER BY operation_id, number",
    )
    assert [tuple(r) for r in history] == [
        ("op-q", 1, "firing"),
        ("op-q", 2, "resolved"),  # replaced...
        ("op-q", 3, "firing"),  # ...and still true
        ("op-q", 4, "resolved"),  # replaced, and no longer in scope: not read again
        ("op-r", 1, "firing"),
        ("op-r", 2, "resolved"),
        ("op-r", 3, "firing"),
        ("op-r", 4, "resolved"),
        ("op-r", 5, "firing"),
    ]
    logged = await events.read_after(database, 0, 1000)
    reasons = [orjson.loads(e.raw).get("reason") for e in logged if e.event_type == "alert.changed"]
    assert reasons.count("guard replaced") == 4
    assert reasons.count(None) == 5

    assert await guard_changes.delete(database, "g")
    alert = await alert_of(database, "g", "op-r")
    assert alert is not None
    assert (alert["state"], alert["changes"]) == ("resolved", 6)
    assert not await guard_changes.delete(database, "g")
    await deliver(database, fail_or_succeed("d-3", "op-r", "s-1", "FAIL"))  # nobody watches
    alert = await alert_of(database, "g", "op-r")
    assert alert is not None
    assert alert["changes"] == 6


async def test_tracker_import_of_new_deliveries_is_watched_and_of_an_export_is_not(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    await put(database, "any-failure", when={"failed_above": 0})
    bare = tmp_path / "bare.jsonl"
    bare.write_bytes(b"\n".join(fail_or_succeed(f"d-{n}", "op-i", "s-1", "FAIL") for n in range(3)))
    imported = tracker(database_url, "import", str(bare))
    assert imported.returncode == 0, imported.stderr
    alert = await alert_of(database, "any-failure", "op-i")
    assert alert is not None
    assert (alert["state"], alert["value"], alert["changes"]) == ("firing", 3.0, 1)  # one batch

    exported = tracker(database_url, "export")
    assert exported.returncode == 0, exported.stderr
    copy = tmp_path / "export.jsonl"
    copy.write_text(exported.stdout)
    other = await asyncio.to_thread(create_database, url_of_server(database_url))
    try:
        again = tracker(other, "import", str(copy))
        assert again.returncode == 0, again.stderr
        conn = await asyncpg.connect(other)
        try:
            alerts = await conn.fetch("SELECT guard, state, changes FROM alerts")
            outbox = await conn.fetchval("SELECT count(*) FROM webhook_outbox")
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(drop_database, other)
    # The export's alert came with it, once, and nothing was decided or sent again (the
    # guard is configuration: the copy has none, and its alert is history).
    assert [tuple(a) for a in alerts] == [("any-failure", "firing", 1)]
    assert outbox == 0
