"""The IoTDA reconciler against the fake of IoTDA's API (tests/support/fake_iotda.py), through
Huawei's own SDK, into a real PostgreSQL: what it reads becomes events and projections, only
changes are appended, a missed push is recovered, a sweep resumes where it stopped, a 429 storm
is ridden out within the budget, and replay equals live."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from tests.support.fake_iotda import FakeIoTDA
from tests.support.task_bodies import task_body
from tracker.domain.delivery import decode
from tracker.iotda.api import Answer, PlatformApi, Refused, Unavailable
from tracker.iotda.budget import Budget
from tracker.iotda.credentials import Credentials
from tracker.iotda.reconciler import Reconciler
from tracker.store import iotda as store
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit
from tracker.store.replay import replay

pytestmark = pytest.mark.asyncio

PUSHED, LATER = "20261207T080000Z", "20261207T080001Z"  # two pushes' event_time
FAST = 200.0  # requests a second: the fake does not mind; budget tests set their own


@pytest.fixture
async def iotda() -> AsyncIterator[FakeIoTDA]:
    async with FakeIoTDA() as fake:
        yield fake


@pytest.fixture
async def appends(database: Database) -> AsyncIterator[GroupCommit]:
    commit = GroupCommit(database)
    yield commit
    await commit.close()


def api_of(fake: FakeIoTDA) -> PlatformApi:
    return PlatformApi(Credentials(fake.endpoint, fake.project_id, fake.ak, fake.sk))


async def reconcile(
    database: Database,
    appends: GroupCommit | None,
    fake: FakeIoTDA,
    *,
    task: str | None = None,
    rate: float = FAST,
    apps: tuple[str | None, ...] = ("app-1",),
) -> Reconciler:
    async with api_of(fake) as api:
        reconciler = Reconciler(database, api, Budget(rate), appends, apps)
        await reconciler.once(task)
    return reconciler


async def count(database: Database, sql: str, *args: object) -> int:
    row = await database.fetchrow("count", sql, *args)
    assert row is not None
    return int(row[0])


async def observed(database: Database, kind: str) -> int:
    return await count(database, "SELECT count(*) FROM events WHERE event_type = $1", kind)


async def rollup(database: Database, task_id: str) -> dict[str, object]:
    row = await database.fetchrow(
        "rollup", "SELECT * FROM operations WHERE operation_id = $1", task_id
    )
    assert row is not None
    return dict(row)


async def test_devices_moving_between_polls_become_events_and_projections(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    devices = [f"dev-{i:03d}" for i in range(120)]
    task = iotda.create_task(devices, task_type="firmwareUpgrade", app_id="app-1")

    first = await reconcile(database, appends, iotda)

    assert first.tally.appended == {"iotda.batchtask.observed": 1, "iotda.subtask.observed": 120}
    counts = await rollup(database, task.task_id)
    assert counts["track"] == "firmware"
    assert (counts["devices"], counts["waitting"], counts["processing"]) == (120, 120, 0)

    task.set(devices[:30], "Processing")
    task.set(devices[30:40], "Success", output="upgraded")
    task.set(devices[40:45], "Fail", error=("IOTDA.014020", "device offline"))
    second = await reconcile(database, appends, iotda, task=task.task_id)

    assert second.tally.appended == {"iotda.batchtask.observed": 1, "iotda.subtask.observed": 45}
    counts = await rollup(database, task.task_id)
    assert (counts["waitting"], counts["processing"], counts["success"], counts["fail"]) == (
        75,
        30,
        10,
        5,
    )
    errors = await database.fetch(
        "errors", "SELECT error_code, result_desc, devices FROM operation_errors"
    )
    assert [tuple(e) for e in errors] == [("IOTDA.014020", "device offline", 5)]
    trail = await database.fetch(
        "trail",
        "SELECT from_state, to_state, kind, valid FROM device_transitions WHERE device_id = $1 "
        "ORDER BY position",
        devices[40],
    )
    assert [tuple(t) for t in trail] == [
        (None, "Waitting", "subtask", True),
        # Processing came and went between two reads: a move the allowed ones lead along
        ("Waitting", "Fail", "subtask", True),
    ]
    member = await database.fetchrow(
        "member",
        "SELECT state, result, error_code, result_desc, app_id FROM operation_devices "
        "WHERE operation_id = $1 AND device_id = $2",
        task.task_id,
        devices[40],
    )
    assert member is not None
    assert tuple(member) == ("Fail", "FAIL", "IOTDA.014020", "device offline", "app-1")
    progress = await database.fetchrow(
        "task", "SELECT status, progress FROM tasks WHERE task_id = $1", task.task_id
    )
    assert progress is not None
    assert progress["status"] == "Processing"
    assert orjson.loads(progress["progress"]) == task.progress()


async def test_each_event_keeps_the_answer_it_came_from_byte_for_byte(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(["dev-é", "dev-2"], app_id="app-1")
    task.set("dev-é", "Fail", error=("E1", 'déjà vu \u2028 "quoted"'))

    await reconcile(database, appends, iotda)

    rows = await database.fetch(
        "bodies", "SELECT event_type, raw, codec FROM events ORDER BY position"
    )
    assert {r["event_type"] for r in rows} == {"iotda.batchtask.observed", "iotda.subtask.observed"}
    async with api_of(iotda) as api:
        answer = await api.show_task(task.task_id)
    bodies = [await _body(database, r["raw"], r["codec"]) for r in rows]
    for body in bodies:
        said = orjson.loads(body)
        key = b'"detail":' if "detail" in said else b'"batchtask":'
        cut = body[body.index(key) + len(key) : -1]
        assert cut in answer.raw  # the platform's own bytes, not a re-encoding
        assert said["request"].startswith(f"GET /v5/iot/{iotda.project_id}/batchtasks/")
        assert datetime.fromisoformat(said["observed_at"]).tzinfo is not None


async def _body(database: Database, raw: bytes, codec: int) -> bytes:
    from tracker.store import bodies  # noqa: PLC0415

    async with database.pool.acquire() as conn:
        await bodies.ready(conn, (codec,))
    return bodies.unpack(codec, raw)


async def test_nothing_unchanged_is_appended_twice(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(130, app_id="app-1")
    task.set_range(0, 50, "Processing")
    await reconcile(database, appends, iotda)
    before = await count(database, "SELECT count(*) FROM events")

    again = await reconcile(database, appends, iotda, task=task.task_id)

    assert again.tally.requests >= 3  # it read the whole task again...
    assert again.tally.appended == {}  # ...and found nothing new
    assert await count(database, "SELECT count(*) FROM events") == before


async def test_a_missed_push_is_recovered_and_shown_as_never_pushed(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(["dev-1", "dev-2"], app_id="app-1")
    pushed = {
        "resource": "batchtask",
        "event": "update",
        "event_time": "20261207T080000Z",
        "notify_data": {
            "body": {
                "app_id": "app-1",
                "task_id": task.task_id,
                "task_type": "softwareUpgrade",
                "status": "Processing",
            }
        },
    }
    await appends.append(decode(orjson.dumps(pushed)))
    task.set(["dev-1", "dev-2"], "Success")
    task.finish()  # the platform pushed Success once; the push was lost

    await reconcile(database, appends, iotda, apps=())

    row = await database.fetchrow(
        "task", "SELECT status, pushed, observed FROM tasks WHERE task_id = $1", task.task_id
    )
    assert row is not None
    assert row["status"] == "Success"
    assert orjson.loads(row["pushed"]) == ["Processing"]
    assert "Success" in orjson.loads(row["observed"])
    moves = await database.fetch(
        "moves",
        "SELECT from_status, to_status, source FROM task_transitions ORDER BY position",
    )
    assert [tuple(m) for m in moves] == [
        (None, "Processing", "push"),
        ("Processing", "Success", "reconciliation"),
    ]


async def test_a_task_read_in_full_after_it_ended_is_left_alone(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(60, app_id="app-1")
    await reconcile(database, appends, iotda)  # active: read, due again in 30 s
    task.set_range(0, 60, "Success")
    task.finish()
    sweep = await store.sweep(database, task.task_id)
    assert sweep is not None
    assert sweep.next_at is not None

    async with api_of(iotda) as api:
        reconciler = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
        sweep.next_at = datetime.now(UTC) - timedelta(seconds=1)
        await store.save(database, sweep, datetime.now(UTC))
        await reconciler.once()  # sees it ended: reads it in full once more
        ended = await store.sweep(database, task.task_id)
        assert ended is not None
        assert (ended.status, ended.final_reads, ended.next_at) == ("Success", 1, None)
        calls = len(iotda.calls)
        await reconciler.once()  # only the listing: the task is left alone

    shown = [c for c in iotda.calls[calls:] if c.operation == "ShowBatchTask"]
    assert shown == []
    assert await count(database, "SELECT success FROM operations") == 60


async def test_a_restart_mid_sweep_resumes_where_it_stopped(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(1000, app_id="app-1")  # 20 pages
    async with api_of(iotda) as api:
        first = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
        await first.discover()
        [sweep] = await store.due(database, datetime.now(UTC), 10)
        await first.visit(sweep, max_pages=5)  # the head, then 5 pages: then "the process ends"
    saved = await store.sweep(database, task.task_id)
    assert saved is not None
    assert saved.marker is not None
    assert saved.swept == 300
    assert await observed(database, "iotda.subtask.observed") == 300

    calls, resumed_from = len(iotda.calls), saved.marker
    async with api_of(iotda) as api:
        second = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
        await second.visit(saved, max_pages=None)

    markers = [c.query.get("marker") for c in iotda.calls[calls:] if c.operation == "ShowBatchTask"]
    assert markers[1] == resumed_from  # after the head, it went on from where it was
    # The head, then the 14 pages left (no failed or retrying device: the checks are skipped).
    assert len(markers) == 1 + 14
    assert await observed(database, "iotda.subtask.observed") == 1000
    done = await store.sweep(database, task.task_id)
    assert done is not None
    assert (done.marker, done.sweeps) == (None, 1)


async def test_a_429_storm_is_ridden_out_within_the_budget(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(400, app_id="app-1")
    iotda.throttle_next(4)
    iotda.retry_after = 1

    reconciler = await reconcile(database, appends, iotda, rate=5.0)

    assert await observed(database, "iotda.subtask.observed") == 400
    throttled = [c for c in iotda.calls if c.status == 429]
    assert len(throttled) == 4
    # Every second-long window saw at most the budget (one more for arrival jitter).
    assert iotda.peak(1.0) <= 6
    assert reconciler.tally.requests == len(iotda.calls)
    assert task.task_id in {
        r["operation_id"]
        for r in await database.fetch("ops", "SELECT operation_id FROM operations")
    }


async def test_server_faults_are_retried_with_backoff(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    iotda.create_task(10, app_id="app-1")
    iotda.fail_next(2, 503)

    await reconcile(database, appends, iotda)

    assert [c.status for c in iotda.calls[:3]] == [503, 503, 200]
    assert await observed(database, "iotda.subtask.observed") == 10


async def test_a_dry_run_appends_and_remembers_nothing(
    database: Database, iotda: FakeIoTDA
) -> None:
    iotda.create_task(3, app_id="app-1")

    dry = await reconcile(database, None, iotda)

    assert dry.tally.appended == {"iotda.batchtask.observed": 1, "iotda.subtask.observed": 3}
    assert len(dry.tally.events) == 4
    assert await count(database, "SELECT count(*) FROM events") == 0
    assert await count(database, "SELECT count(*) FROM iotda_sweeps") == 0


async def test_replay_equals_live_after_reconciliation(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA, database_url: str
) -> None:
    task = iotda.create_task(200, task_type="firmwareUpgrade", app_id="app-1")
    await reconcile(database, appends, iotda)
    task.set_range(0, 80, "Processing")
    task.set_range(80, 100, "FailWaitRetry", error=("E9", "retrying"))
    await reconcile(database, appends, iotda, task=task.task_id)
    task.set_range(0, 60, "Success")
    task.set_range(80, 100, "Fail", error=("E9", "gave up"))
    await reconcile(database, appends, iotda, task=task.task_id)

    outcome = await replay(database_url, check=True)

    assert outcome.drift == []
    assert outcome.events == await count(database, "SELECT count(*) FROM events")
    counts = await rollup(database, task.task_id)
    assert (counts["success"], counts["fail"], counts["processing"], counts["waitting"]) == (
        60,
        20,
        20,
        100,
    )


async def test_two_reconcilers_never_run_at_once(database: Database) -> None:
    async with store.exclusive(database):
        with pytest.raises(store.Busy):
            async with store.exclusive(database):
                pass
    async with store.exclusive(database):  # released when the first ended
        pass


async def test_a_task_whose_visit_fails_waits_its_turn_instead_of_looping(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracker.iotda import reconciler as module  # noqa: PLC0415

    monkeypatch.setattr(module, "backoff", lambda *_, **__: 0.0)  # no waiting between tries
    task = iotda.create_task(10, app_id="app-1")
    await store.found(
        database, [(task.task_id, "app-1", "softwareUpgrade", "")], datetime.now(UTC), revive=True
    )
    iotda.fail_next(1000, 503)
    async with api_of(iotda) as api:
        running = asyncio.create_task(Reconciler(database, api, Budget(FAST), appends, ()).run())
        await asyncio.sleep(3)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    tries = [c for c in iotda.calls if c.operation == "ShowBatchTask"]
    assert [c.status for c in tries] == [503] * module.ATTEMPTS  # one visit's tries, then no more
    later = await store.sweep(database, task.task_id)
    assert later is not None
    assert later.next_at is not None
    assert later.next_at > datetime.now(UTC) + timedelta(seconds=50)


async def test_a_listing_cut_short_is_walked_again_until_every_task_is_found(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    tasks = [iotda.create_task(1, app_id="app-1").task_id for _ in range(120)]  # 3 pages
    async with api_of(iotda) as api:
        listed = api.list_tasks
        storm = True

        async def second_page_fails(**query: Any) -> Answer:  # a 5xx storm past every retry
            if storm and query["marker"] is not None:
                raise Unavailable("scripted: the second page's 503s outlasted the retries")
            return await listed(**query)

        api.list_tasks = second_page_fails  # type: ignore[method-assign]
        reconciler = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
        with pytest.raises(Unavailable):
            await reconciler.discover()
        assert len(await store.statuses(database, tasks)) == 50  # the first page's
        storm = False
        await reconciler.discover()  # the head has nothing new: the walk reads on

    assert len(await store.statuses(database, tasks)) == 120


async def test_a_task_long_ended_then_retried_without_a_push_is_read_again(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    from tracker.iotda import reconciler as module  # noqa: PLC0415

    tasks = [iotda.create_task(2, app_id="app-1") for _ in range(120)]
    for task in tasks:
        task.set_range(0, 1, "Success")
        task.set_range(1, 2, "Fail", error=("E1", "offline"))
        task.finish()
    await reconcile(database, appends, iotda)  # each read in full after it ended: left alone
    oldest = tasks[0]  # on the list's last page, newest first
    ended = await store.sweep(database, oldest.task_id)
    assert ended is not None
    assert (ended.status, ended.next_at) == ("PartialSuccess", None)

    oldest.set_range(1, 2, "Processing")  # RetryBatchTask: its push was lost
    oldest.status = "Processing"
    later = datetime.now(UTC) + module.WALK_EVERY + timedelta(seconds=1)
    for _ in range(3):  # a round a page; a new process each round (a restart resumes)
        async with api_of(iotda) as api:
            reconciler = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
            reconciler.clock = lambda: later
            await reconciler.discover(walk_pages=1)  # a page of the walk a round: it resumes
    revived = await store.sweep(database, oldest.task_id)
    assert revived is not None
    assert revived.next_at is not None  # due again

    await reconcile(database, appends, iotda, task=oldest.task_id)
    row = await database.fetchrow(
        "task", "SELECT status FROM tasks WHERE task_id = $1", oldest.task_id
    )
    assert row is not None
    assert row["status"] == "Processing"
    walks = [
        c.query.get("marker")
        for c in iotda.calls
        if c.operation == "ListBatchTasks" and c.query.get("task_type") == "softwareUpgrade"
    ]
    # Each round: the head (nothing new there), then the walk's next page, where it stopped.
    head, first, head_2, second, head_3, third = walks[-6:]
    assert (head, first, head_2, head_3) == (None, None, None, None)
    assert second is not None
    assert third not in (None, second)


async def test_a_task_id_iotda_refuses_is_not_asked_for_again_until_a_push_moves_it(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    await appends.append(decode(task_body("not-a-task-id", "Processing", event_time=PUSHED)))
    async with api_of(iotda) as api:
        reconciler = Reconciler(database, api, Budget(FAST), appends, ())
        for _ in range(3):
            await reconciler.discover()
            for sweep in await store.due(database, datetime.now(UTC), 10):
                await reconciler.visit(sweep, None)
        asked = [c.status for c in iotda.calls if c.operation == "ShowBatchTask"]
        assert asked == [400]  # once: IoTDA refuses the id, and asking again soon won't help
        refused = await store.sweep(database, "not-a-task-id")
        assert refused is not None
        assert refused.next_at is not None  # a refusal may be ours to fix: not for ever
        assert refused.next_at > datetime.now(UTC) + timedelta(hours=23)

        await appends.append(decode(task_body("not-a-task-id", "Success", event_time=LATER)))
        await reconciler.discover()
        assert [s.task_id for s in await store.due(database, datetime.now(UTC), 10)] == [
            "not-a-task-id"
        ]


async def test_a_dry_run_counts_each_device_once(database: Database, iotda: FakeIoTDA) -> None:
    task = iotda.create_task(10, app_id="app-1")
    task.set_range(0, 3, "Fail", error=("E1", "offline"))
    task.set_range(3, 5, "FailWaitRetry", error=("E2", "retrying"))

    dry = await reconcile(database, None, iotda)  # the head, then the failed-first reads

    assert dry.tally.appended == {"iotda.batchtask.observed": 1, "iotda.subtask.observed": 10}
    devices = [e.stream_id for e in dry.tally.events if e.stream_type == "device"]
    assert sorted(devices) == sorted(set(devices))


async def run_until(reconciler: Reconciler, done: Callable[[], Awaitable[bool]]) -> None:
    running = asyncio.create_task(reconciler.run())
    try:
        async with asyncio.timeout(20):
            while not await done():
                assert not running.done()
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_a_bug_in_a_round_is_logged_and_the_reconciler_carries_on(
    database: Database,
    appends: GroupCommit,
    iotda: FakeIoTDA,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tracker.iotda import reconciler as module  # noqa: PLC0415

    monkeypatch.setattr(module, "backoff", lambda *_, **__: 0.0)
    iotda.create_task(3, app_id="app-1")
    due, failures = store.due, [RuntimeError("scripted: a bug")]

    async def buggy_once(*args: Any) -> list[store.Sweep]:
        if failures:
            raise failures.pop()
        return await due(*args)

    monkeypatch.setattr(store, "due", buggy_once)

    async def read() -> bool:
        return await observed(database, "iotda.subtask.observed") >= 3

    async with api_of(iotda) as api:
        await run_until(Reconciler(database, api, Budget(FAST), appends, ("app-1",)), read)
    assert "a round failed" in caplog.text


async def test_a_task_whose_visit_hits_a_bug_waits_and_the_others_are_read(
    database: Database,
    appends: GroupCommit,
    iotda: FakeIoTDA,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cursed, fine = (iotda.create_task(3, app_id="app-1") for _ in range(2))
    held_task = store.held_task

    async def buggy_for_one(db: Database, task_id: str) -> object:
        if task_id == cursed.task_id:
            raise ZeroDivisionError("scripted: a bug reading this task")
        return await held_task(db, task_id)

    monkeypatch.setattr(store, "held_task", buggy_for_one)
    reconciler = Reconciler(database, api_of(iotda), Budget(FAST), appends, ("app-1",))

    async def fine_read() -> bool:
        return await observed(database, "iotda.subtask.observed") >= 3

    async with reconciler.api:
        await run_until(reconciler, fine_read)
    later = await store.sweep(database, cursed.task_id)
    assert later is not None
    assert later.next_at is not None
    assert later.next_at > datetime.now(UTC) + timedelta(seconds=50)  # its turn, later
    assert (
        await count(
            database, "SELECT count(*) FROM operation_devices WHERE operation_id = $1", fine.task_id
        )
        == 3
    )
    assert "a visit or a list's read failed" in caplog.text


async def test_a_list_the_platform_refuses_keeps_no_other_list_from_being_read(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(3, app_id="app-1")
    async with api_of(iotda) as api:
        listed = api.list_tasks

        async def gone_app_refused(**query: Any) -> Answer:
            if query["app_id"] == "gone-app":
                raise Refused("scripted: no such app", status=400, error_code="IOTDA.000002")
            return await listed(**query)

        api.list_tasks = gone_app_refused  # type: ignore[method-assign]
        reconciler = Reconciler(database, api, Budget(FAST), appends, ("gone-app", "app-1"))

        async def read() -> bool:
            return await observed(database, "iotda.subtask.observed") >= 3

        await run_until(reconciler, read)
    assert task.task_id in await store.statuses(database, [task.task_id])


async def test_a_walk_whose_place_the_platform_refuses_starts_again_from_the_top(
    database: Database, appends: GroupCommit, iotda: FakeIoTDA
) -> None:
    for _ in range(60):  # two pages
        iotda.create_task(1, app_id="app-1")
    lost = store.Listing("not-a-marker", None)  # a place IoTDA refuses (400)
    async with api_of(iotda) as api:
        reconciler = Reconciler(database, api, Budget(FAST), appends, ("app-1",))
        await reconciler.discover()  # all new: the head reads the whole list
        await store.save_listing(database, "app-1", "softwareUpgrade", lost, datetime.now(UTC))
        with pytest.raises(Refused):
            await reconciler.discover()  # the head knows its page; the walk goes on from there
        assert await store.listing(database, "app-1", "softwareUpgrade") == store.Listing(
            None, None
        )
        await reconciler.discover()  # from the top, to the end

    walked = await store.listing(database, "app-1", "softwareUpgrade")
    assert walked.marker is None
    assert walked.walked_at is not None
