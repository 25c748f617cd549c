"""Webhook delivery (tracker/webhooks/) against a real aiohttp receiver on a real loopback port:
once, signed, after commit; retried with backoff until 2xx; in order per ordering key, with a
hanging receiver holding up nobody else, nor more than its share of the slots however many of
its keys are due, and the rows behind a key's head queued (not due) until it is delivered or
dead; dead past the give-up time, and back by `retry`, behind its key's pending rows; never to
a target the policy refuses; never for a transaction that rolled back; woken after commit by
`announce` or the live feed's NOTIFY, never by a NOTIFY inside the enqueueing transaction; a
claim whose plan reads the due heads and none of the rows queued behind them, and steps over
the due heads of origins at their cap without probing them; log lines that name a webhook by
its origin, never its (capability) URL, the origin the claim caps by."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import yarl
from multidict import CIMultiDict, CIMultiDictProxy

from tests.support.cli import tracker
from tests.support.postgres import as_role
from tests.support.receiver import HANG, Receiver, serving
from tests.support.waiting import until, until_waiting_for_lock
from tracker import metrics
from tracker.config import Settings
from tracker.store import feed, outbox
from tracker.store.database import Database
from tracker.store.errors import NotFound
from tracker.store.outbox import (
    CHANNEL,
    CLAIM,
    SOONEST,
    Outgoing,
    announce,
    claim,
    dead_letters,
    delivered,
    enqueue,
    retry,
    unstick,
)
from tracker.webhooks.deliverer import Deliverer, origin, scrub
from tracker.webhooks.signing import SIGNATURE, TIMESTAMP, fresh, verify

SECRET = "guard-secret-of-the-test"
Start = Callable[..., Awaitable[Deliverer]]


@pytest.fixture
async def start(database: Database) -> AsyncIterator[Start]:
    """Run a deliverer (settings overridden per test) until the test ends."""
    await database.fetch(
        "secret", "INSERT INTO webhook_secrets VALUES ('guard', $1, now())", SECRET
    )
    tasks: list[asyncio.Task[None]] = []

    async def run(**overrides: Any) -> Deliverer:
        knobs = {k: overrides.pop(k) for k in ("base", "poll", "concurrency") if k in overrides}
        settings = Settings(**{"webhook_hosts": "127.0.0.1", **overrides})
        deliverer = Deliverer(database, settings, **{"base": 0.02, "poll": 0.2, **knobs})
        tasks.append(asyncio.create_task(deliverer.run()))
        return deliverer

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def send(db: Database, url: str, ordering: str = "rollout-1", id: str | None = None) -> str:  # noqa: A002
    """Enqueue one change in a committed transaction; its body is its id."""
    change = id or secrets.token_hex(8)
    async with db.transaction("enqueue") as conn:
        await enqueue(conn, Outgoing(change, ordering, url, "guard", change.encode()))
    return change


async def state_of(db: Database, id: str) -> tuple[str, int, str | None]:  # noqa: A002
    row = await db.fetchrow(
        "state", "SELECT state, attempts, last_error FROM webhook_outbox WHERE id = $1", id
    )
    assert row is not None
    return row["state"], row["attempts"], row["last_error"]


def counted(outcome: str) -> float:
    found = metrics.REGISTRY.get_sample_value(
        "tracker_webhook_deliveries_total", {"outcome": outcome}
    )
    return found or 0.0


async def test_a_committed_change_is_delivered_once_signed(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start()
    before = counted("delivered")
    change = await send(database, receiver.url("/hook"))
    await until(lambda: len(receiver.hits) == 1, "the delivery")
    hit = receiver.hits[0]
    assert hit.body == change.encode()
    assert hit.headers["Content-Type"] == "application/json"
    assert verify(SECRET.encode(), hit.body, hit.headers[SIGNATURE])
    assert fresh(hit.headers[TIMESTAMP], time.time(), tolerance=5)
    await until(lambda: _is(database, change, "delivered"), "the row marked delivered")
    assert await state_of(database, change) == ("delivered", 1, None)
    await asyncio.sleep(0.5)  # two polls more: nothing is sent again
    assert len(receiver.hits) == 1
    assert counted("delivered") == before + 1


async def _is(db: Database, id: str, state: str) -> bool:  # noqa: A002
    return (await state_of(db, id))[0] == state


async def test_a_failing_receiver_gets_it_again_until_it_answers_2xx(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start(poll=30.0)  # the backoff paces the retries, not the poll
    failed, delivered = counted("failed"), counted("delivered")
    receiver.scripts["/flaky"] = [500, 500, 500, 204]
    change = await send(database, receiver.url("/flaky"))
    await until(lambda: _is(database, change, "delivered"), "delivery after three failures")
    await asyncio.sleep(0.5)
    assert receiver.ids() == [change] * 4
    assert await state_of(database, change) == ("delivered", 4, None)
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    # Equal jitter on 0.02 s doubling: each wait at least half its ceiling, and well below
    # the poll.
    assert [gap >= 0.01 * 2**n for n, gap in enumerate(gaps)] == [True] * 3, gaps
    assert sum(gaps) < 2.0, gaps
    assert (counted("failed"), counted("delivered")) == (failed + 3, delivered + 1)


async def test_one_key_in_order_through_retries(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start()
    receiver.scripts["/first"] = [500, 503, 200]
    first = await send(database, receiver.url("/first"), "rollout-a")
    second = await send(database, receiver.url("/second"), "rollout-a")
    other = await send(database, receiver.url("/other"), "rollout-b")
    await until(lambda: _is(database, second, "delivered"), "the second change")
    assert receiver.ids("/first") == [first] * 3
    assert receiver.ids("/second") == [second]
    arrivals = [hit.body.decode() for hit in receiver.hits if hit.body != other.encode()]
    assert arrivals == [first, first, first, second]
    assert receiver.ids("/other") == [other]  # another key went meanwhile


async def test_a_hanging_receiver_delays_no_other_key(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start(webhook_timeout=5.0)
    receiver.scripts["/hang"] = [HANG]
    stuck = await send(database, receiver.url("/hang"), "rollout-stuck")
    await until(lambda: len(receiver.hits) == 1, "the hanging delivery to start")
    began = time.monotonic()
    quick = [await send(database, receiver.url("/quick"), f"rollout-{n}") for n in range(3)]
    await until(lambda: len(receiver.ids("/quick")) == 3, "the other keys", within=4)
    took = time.monotonic() - began
    assert sorted(receiver.ids("/quick")) == sorted(quick)
    assert took < 1.0, f"other keys waited {took:.2f} s behind a hanging receiver"
    assert (await state_of(database, stuck))[0] == "pending"


async def test_a_hanging_receiver_with_more_keys_than_slots_holds_only_its_share(
    database: Database, receiver: Receiver, start: Start
) -> None:
    """A guard over many rollouts, each firing, to a receiver that never answers: more of its keys
    are due than the deliverer has slots, yet it holds only its share of them (two of four), and
    another receiver (another origin) is delivered at once in the rest. Its rows beyond the
    share are left due, not leased: once it answers they go at once, each once."""
    deliverer = await start(webhook_timeout=5.0)
    assert deliverer.concurrency == 4
    receiver.scripts["/hang"] = [HANG] * 6
    hung = [await send(database, receiver.url("/hang"), f"rollout-hung-{n}") for n in range(6)]
    await until(lambda: len(receiver.hits) >= 2, "the hanging receiver's share in flight")
    await asyncio.sleep(0.6)  # three polls: time to fill every slot it could get

    async with serving() as healthy:
        began = time.monotonic()
        quick = [await send(database, healthy.url("/quick"), f"rollout-ok-{n}") for n in range(3)]
        await until(lambda: len(healthy.hits) == 3, "the healthy receiver's changes", within=4)
        took = time.monotonic() - began
        assert sorted(healthy.ids()) == sorted(quick)
    assert took < 1.0, f"a healthy receiver waited {took:.2f} s behind a hanging one"

    assert len(receiver.hits) == 2  # its share, no more
    leased = await database.fetch(
        "leased",
        "SELECT id FROM webhook_outbox WHERE id = ANY($1::text[]) AND next_at > now()",
        hung,
    )
    assert len(leased) == 2  # the others are due still, hidden from no claim
    receiver.released.set()  # it answers now (200), and at once from here on
    await until(
        lambda: _all(database, hung, "delivered"), "the hanging receiver's changes", within=3
    )
    assert sorted(receiver.ids()) == sorted(hung)  # each once


async def _all(db: Database, ids: list[str], state: str) -> bool:
    return all([await _is(db, one, state) for one in ids])


async def test_past_the_give_up_time_it_is_dead_and_retry_brings_it_back(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start(webhook_give_up=0.3)
    dead = counted("dead")
    receiver.scripts["/down"] = [500] * 1000
    change = await send(database, receiver.url("/down"))
    await until(lambda: _is(database, change, "dead"), "the dead letter")
    _, attempts, error = await state_of(database, change)
    assert (attempts > 1, error) == (True, "answered 500")
    assert counted("dead") == dead + 1
    letters = await dead_letters(database)
    assert [(letter.id, letter.last_error) for letter in letters] == [(change, "answered 500")]
    assert await dead_letters(database, after=letters[0].seq) == []
    tried = len(receiver.hits)
    await asyncio.sleep(0.5)
    assert len(receiver.hits) == tried  # a dead letter is left alone

    receiver.scripts["/down"] = []
    await retry(database, change)
    await until(lambda: _is(database, change, "delivered"), "the retried delivery")
    assert len(receiver.hits) == tried + 1
    with pytest.raises(NotFound):
        await retry(database, change)  # no longer dead
    with pytest.raises(NotFound):
        await retry(database, "never-enqueued")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_refused_target_is_never_contacted(
    database: Database, receiver: Receiver, start: Start, host: str
) -> None:
    """No allow-list: loopback is refused at delivery too, a literal or a name resolving to it
    (through the client's own resolver)."""
    await start(webhook_hosts=None, webhook_give_up=0.3)
    url = receiver.url("/hook").replace("127.0.0.1", host)
    change = await send(database, url)
    await until(lambda: _is(database, change, "dead"), "the refused delivery to die")
    assert "not a public address" in str((await state_of(database, change))[2])
    assert receiver.hits == []


async def test_a_rolled_back_change_is_never_sent(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start()

    class AbandonedError(Exception):
        pass

    async def abandon() -> None:
        async with database.transaction("enqueue") as conn:
            await enqueue(conn, Outgoing("rolled-back", "r", receiver.url("/hook"), "guard", b"x"))
            raise AbandonedError

    with pytest.raises(AbandonedError):
        await abandon()
    kept = await send(database, receiver.url("/hook"), "r")
    await until(lambda: _is(database, kept, "delivered"), "the committed change")
    await asyncio.sleep(0.5)
    assert receiver.ids() == [kept]
    count = await database.fetchrow("n", "SELECT count(*) FROM webhook_outbox")
    assert count is not None
    assert count[0] == 1


async def test_several_deliverers_send_each_change_once_in_order(
    database: Database, receiver: Receiver, start: Start
) -> None:
    """As several processes would: claims skip each other's rows, and keys stay in order."""
    for _ in range(3):
        await start()
    sent = {
        key: [await send(database, receiver.url(f"/{key}"), key) for _ in range(5)]
        for key in ("k1", "k2", "k3", "k4")
    }
    await until(lambda: len(receiver.hits) == 20, "every change")
    await asyncio.sleep(0.5)
    assert len(receiver.hits) == 20
    for key, changes in sent.items():
        assert receiver.ids(f"/{key}") == changes


async def test_the_runtime_role_enqueues_and_delivers(
    database_url: str, database: Database, receiver: Receiver
) -> None:
    """The grants of sql/definitions/90_tracker_grant_runtime.sql are enough for the server."""
    role, password = f"tracker_rt_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    done = await asyncio.to_thread(
        tracker, database_url, "migrate", "--runtime-role", role, TRACKER_RUNTIME_PASSWORD=password
    )
    assert done.returncode == 0, done.stderr
    runtime = await Database.open(as_role(database_url, role, password), timeout=10, size=4)
    task: asyncio.Task[None] | None = None
    try:
        await runtime.fetch(
            "secret", "INSERT INTO webhook_secrets VALUES ('guard', $1, now())", SECRET
        )
        change = await send(runtime, receiver.url("/hook"))
        deliverer = Deliverer(runtime, Settings(webhook_hosts="127.0.0.1"), base=0.02, poll=0.2)
        task = asyncio.create_task(deliverer.run())
        await until(lambda: _is(runtime, change, "delivered"), "delivery as the runtime role")
        assert receiver.ids() == [change]
        # A retry draws a new seq (store/outbox.py): the role may.
        await database.fetch(
            "kill", "UPDATE webhook_outbox SET state = 'dead' WHERE id = $1", change
        )
        await retry(runtime, change)
        await until(lambda: len(receiver.hits) == 2, "the retried delivery as the runtime role")
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await runtime.close()
        await database.fetch("drop role", f'DROP OWNED BY "{role}"')
        await database.fetch("drop role", f'DROP ROLE "{role}"')


async def queued(db: Database, ids: list[str]) -> list[bool]:
    """Whether each row waits behind its key's head (not due: next_at 'infinity'), by id."""
    rows = await db.fetch(
        "queued",
        "SELECT id, next_at = 'infinity' AS queued FROM webhook_outbox WHERE id = ANY($1::text[])",
        ids,
    )
    found = {row["id"]: row["queued"] for row in rows}
    return [found[one] for one in ids]


async def test_rows_behind_a_retrying_head_wait_queued_then_go_in_order(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start()
    receiver.scripts["/head"] = [500] * 1000
    head = await send(database, receiver.url("/head"), "rollout-q")
    behind = [await send(database, receiver.url("/behind"), "rollout-q") for _ in range(30)]
    await until(lambda: len(receiver.ids("/head")) >= 3, "the head to fail three times")
    assert await queued(database, [head, *behind]) == [False] + [True] * 30
    assert {(await state_of(database, one))[:2] for one in behind} == {("pending", 0)}
    assert receiver.ids("/behind") == []

    receiver.scripts["/head"] = []  # the next attempt succeeds
    await until(lambda: len(receiver.ids("/behind")) == 30, "every change behind the head")
    await asyncio.sleep(0.3)
    assert receiver.ids("/behind") == behind  # each once, in order
    paths = [hit.path for hit in receiver.hits]
    assert paths == ["/head"] * (len(paths) - 30) + ["/behind"] * 30
    assert set(receiver.ids("/head")) == {head}


async def test_a_dead_head_makes_the_next_row_of_its_key_due(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start(webhook_give_up=1.0)
    receiver.scripts["/down"] = [500] * 1000
    head = await send(database, receiver.url("/down"), "rollout-d")
    behind = [await send(database, receiver.url("/next"), "rollout-d") for _ in range(3)]
    assert await queued(database, behind) == [True] * 3  # while the head is retrying
    await until(lambda: _is(database, head, "dead"), "the head to die")
    await until(lambda: len(receiver.ids("/next")) == 3, "the rows behind the dead head")
    assert receiver.ids("/next") == behind


async def test_a_retried_dead_letter_goes_behind_its_keys_pending_rows(
    database: Database, receiver: Receiver, start: Start
) -> None:
    """Its key's head may be in flight: the dead letter is sent after the changes pending at the
    retry, never beside or ahead of them (the body's `number` says where it belongs)."""
    await start(webhook_give_up=0.5, webhook_timeout=5.0)
    receiver.scripts["/old"] = [500] * 1000
    old = await send(database, receiver.url("/old"), "rollout-r")
    await until(lambda: _is(database, old, "dead"), "the dead letter")
    receiver.scripts["/old"] = []
    receiver.scripts["/newer"] = [HANG]
    newer = await send(database, receiver.url("/newer"), "rollout-r")
    later = await send(database, receiver.url("/later"), "rollout-r")
    await until(lambda: len(receiver.ids("/newer")) == 1, "the newer change in flight")
    tried = len(receiver.ids("/old"))

    await retry(database, old)
    assert await queued(database, [newer, later, old]) == [False, True, True]
    seqs = await database.fetch(
        "seq", "SELECT id FROM webhook_outbox WHERE state = 'pending' ORDER BY seq"
    )
    assert [row["id"] for row in seqs] == [newer, later, old]  # at the end of its key's queue
    await asyncio.sleep(0.3)
    assert len(receiver.ids("/old")) == tried  # not beside the one in flight

    receiver.released.set()  # the newer change is answered 200
    await until(lambda: _is(database, old, "delivered"), "the retried change")
    assert receiver.ids()[-3:] == [newer, later, old]


async def test_a_retried_dead_letter_alone_is_due_at_once(
    database: Database, receiver: Receiver, start: Start
) -> None:
    await start(webhook_give_up=0.3)
    receiver.scripts["/old"] = [500] * 1000
    old = await send(database, receiver.url("/old"), "rollout-alone")
    await until(lambda: _is(database, old, "dead"), "the dead letter")
    receiver.scripts["/old"] = []
    await retry(database, old)
    assert await queued(database, [old]) == [False]
    await until(lambda: _is(database, old, "delivered"), "the retried change")


async def test_a_row_enqueued_while_its_head_is_delivered_is_not_left_queued(
    database: Database,
) -> None:
    """The append that queues a row behind the head has not committed when the head is recorded
    delivered: the recording waits for the key's lock, then sees the row and makes it due."""
    await send(database, "http://h/", "rollout-x")
    [head] = await claim(database, 10, 60)
    async with database.transaction("an append") as conn:
        await enqueue(conn, Outgoing("behind", "rollout-x", "http://h/", "guard", b"x"))
        recording = asyncio.create_task(delivered(database, head))
        await until_waiting_for_lock(database.pool, unless_done=[recording])
        assert not recording.done()
    await recording
    assert await queued(database, ["behind"]) == [False]
    assert [row.id for row in await claim(database, 10, 60)] == ["behind"]


async def test_a_key_left_with_nothing_due_is_unstuck(
    database: Database, receiver: Receiver, start: Start
) -> None:
    """Rows written around the rules (a process of an earlier version delivering a head without
    making the next row due, say) leave no key stuck: the deliverer unsticks it at start."""
    first = await send(database, receiver.url("/hook"), "rollout-s")
    second = await send(database, receiver.url("/hook"), "rollout-s")
    other = await send(database, receiver.url("/hook"), "rollout-t")
    await database.fetch(
        "as an earlier version",
        "UPDATE webhook_outbox SET state = 'delivered' WHERE id = $1",
        first,
    )
    assert await queued(database, [second, other]) == [True, False]
    await start()
    await until(lambda: _is(database, second, "delivered"), "the stuck row")
    assert sorted(receiver.ids()) == sorted([second, other])
    assert await unstick(database) == []


async def test_enqueue_does_not_notify_and_announce_does(database: Database) -> None:
    """A NOTIFY in the appending transaction would serialise its commit with every notifying one
    (store/feed.py): the enqueueing transaction sends none, `announce` sends one, after it."""
    heard: list[str] = []
    listener = await asyncpg.connect(database.url)
    try:
        await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        async with database.transaction("enqueue") as conn:
            await enqueue(conn, Outgoing("quiet", "rollout-n", "http://127.0.0.1/h", "guard", b"x"))
        # Notices come in commit order: once this one is heard, any of the enqueue would be.
        await database.fetch("marker", f"SELECT pg_notify('{CHANNEL}', 'marker')")
        await until(lambda: heard == ["marker"], "the marker alone")
        await announce(database)
        await until(lambda: heard == ["marker", ""], "announce's notice")
    finally:
        await listener.close()


async def _listening(db: Database) -> bool:
    """Whether a deliverer listens on both channels (the last statement of its connections)."""
    count = await db.fetchrow(
        "listening",
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND query IN ($1, $2)",
        f'LISTEN "{CHANNEL}"',
        f'LISTEN "{feed.CHANNEL}"',
    )
    return count is not None and count[0] == 2


@pytest.mark.parametrize("wake", ["announce", "an append"])
async def test_a_deliverer_is_woken_by_announce_and_by_the_live_feed(
    database: Database, receiver: Receiver, start: Start, wake: str
) -> None:
    """With a poll of a minute, only a wake-up sends a change within seconds: `announce`, or the
    live feed's NOTIFY (sent after any append that projected something), not the enqueueing."""
    await start(poll=60.0)
    await until(lambda: _listening(database), "the deliverer listening")
    await asyncio.sleep(1.0)  # the rounds its connections woke are over

    change = await send(database, receiver.url("/hook"))
    await asyncio.sleep(0.5)
    assert receiver.hits == []  # enqueueing woke nobody
    if wake == "announce":
        await announce(database)
    else:
        await database.fetch("append", feed.NOTIFY)
    await until(lambda: receiver.ids() == [change], f"a delivery after {wake}", within=3)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _read(plan: dict[str, Any]) -> float:
    """Rows the plan's scans of the outbox read: returned or filtered out, over all loops."""
    return float(
        sum(
            node["Actual Loops"]
            * (
                node["Actual Rows"]
                + node.get("Rows Removed by Filter", 0)
                + node.get("Rows Removed by Index Recheck", 0)
            )
            for node in _nodes(plan)
            if node.get("Relation Name") == "webhook_outbox" and "Scan" in node["Node Type"]
        )
    )


async def _explain(db: Database, sql: str, *args: object) -> dict[str, Any]:
    """The plan of `sql`, run (and rolled back)."""
    async with db.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            found = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        finally:
            await transaction.rollback()
    plan: dict[str, Any] = json.loads(found)[0]["Plan"]
    return plan


@pytest.mark.parametrize("analyzed", [False, True])
async def test_the_claim_reads_the_due_heads_not_the_rows_queued_behind_heads(
    database: Database, analyzed: bool
) -> None:
    """2,000 changes queued behind 20 heads that hang (leased), and 5 keys with a due head: the
    claim walks the due index up to now, so it reads about 5 rows, not 2,000; the look for the
    soonest head reads at worst the 25 heads. With statistics as a table that grew since it was
    last analysed has them (none), and as analysed."""
    async with database.transaction("fill") as conn:
        for n in range(101):
            for key in range(20):
                row = Outgoing(f"c-{key}-{n}", f"hung-{key}", "http://h/", "guard", b"{}")
                await enqueue(conn, row)
    assert len(await claim(database, 100, 3600)) == 20  # the heads, now in flight
    for key in range(5):
        await send(database, "http://h/", f"due-{key}", f"due-{key}")
    if analyzed:
        await database.fetch("analyze", "ANALYZE webhook_outbox")

    plan = await _explain(database, CLAIM, 100, 30.0, [])
    walks = [node for node in _nodes(plan) if node.get("Index Name") == "webhook_outbox_due"]
    assert [walk["Index Cond"] for walk in walks] == ["(next_at <= now())"]
    assert plan["Actual Rows"] == 5  # claimed
    # Each due row: the walk, its head check, the update's look-up.
    assert _read(plan) <= 3 * 5, json.dumps(plan, indent=1)
    soonest = await _explain(database, SOONEST, [])
    assert _read(soonest) <= 2 * 25, json.dumps(soonest, indent=1)


@pytest.mark.parametrize("analyzed", [False, True])
async def test_the_claim_steps_over_the_due_heads_of_origins_at_their_cap(
    database: Database, analyzed: bool
) -> None:
    """A hanging receiver's guard over 200 firing rollouts: 200 due heads to its origin (at its
    cap: skipped), 20 of its heads leased with 2,000 changes queued behind them, 10,000 changes
    delivered, and 5 due heads to another origin. The claim walks the due heads, the skipped
    ones' origin tested before their head's probe, and claims the 5; nothing of the skipped is
    touched. The look for the soonest head skips them likewise."""
    hanging, other = "http://hanging.example:8080", "https://ok.example"
    await database.fetch(
        "history",
        "INSERT INTO webhook_outbox (id, ordering, url, secret_ref, body, created_at, next_at,"
        " state, delivered_at) SELECT 'old-' || n, 'old-' || n % 500, $1, 'guard', '', now(),"
        " now(), 'delivered', now() FROM generate_series(1, 10000) n",
        f"{hanging}/hook?token=T",
    )
    async with database.transaction("fill") as conn:
        for n in range(101):
            for key in range(20):
                row = Outgoing(f"c-{key}-{n}", f"hung-{key}", f"{hanging}/hook", "guard", b"{}")
                await enqueue(conn, row)
    assert {row.origin for row in await claim(database, 100, 3600)} == {hanging}  # in flight
    async with database.transaction("fire") as conn:
        for key in range(200):
            url = f"{hanging.upper()}/other-guard?token=T"  # the same origin, spelt otherwise
            await enqueue(conn, Outgoing(f"f-{key}", f"firing-{key}", url, "guard", b"{}"))
    for key in range(5):
        await send(database, f"{other}:443/in/TOKEN", f"due-{key}", f"due-{key}")
    if analyzed:
        await database.fetch("analyze", "ANALYZE webhook_outbox")

    plan = await _explain(database, CLAIM, 100, 30.0, [hanging])
    walks = [node for node in _nodes(plan) if node.get("Index Name") == "webhook_outbox_due"]
    assert [walk["Index Cond"] for walk in walks] == ["(next_at <= now())"]
    assert plan["Actual Rows"] == 5  # claimed
    # The walk over the 205 due heads, and for the 5 claimed their head check and look-up.
    assert _read(plan) <= 205 + 2 * 5, json.dumps(plan, indent=1)
    soonest = await _explain(database, SOONEST, [hanging])
    assert _read(soonest) <= 2 * 225, json.dumps(soonest, indent=1)

    claimed = await claim(database, 100, 30.0, [hanging])
    assert sorted((row.id, row.origin) for row in claimed) == [
        (f"due-{key}", other) for key in range(5)
    ]
    untouched = await database.fetchrow(
        "skipped",
        "SELECT count(*) FILTER (WHERE next_at <= now() AND attempts = 0) AS due, count(*)"
        " FROM webhook_outbox WHERE id LIKE 'f-%'",
    )
    assert untouched is not None
    assert (untouched["due"], untouched["count"]) == (200, 200)
    assert len(await claim(database, 100, 30.0, [hanging])) == 0
    due_in = await outbox.soonest(database, [hanging])  # the 5, leased for 30 s
    assert due_in is not None
    assert 20 < due_in <= 30
    due_in = await outbox.soonest(database)  # the skipped, overdue
    assert due_in is not None
    assert due_in < 0
    assert len(await claim(database, 100, 30.0)) == 100  # not skipped: the heads to it


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5000/hook",
        "HTTP://User:pw@Example.com:80/x?y#z",
        "https://a.b:443",
        "https://a.b:443/",
        "https://a.b:4430/p",
        "https://a.b:80/p",
        "http://a.b:443/p",
        "http://[::1]:80/a",
        "http://[2001:db8::80]/a",
        "https://h?x=a@b",
        "https://h#frag@x",
        "https://u:p%40x@hooks.example.com:8443/in/TOKEN",
        "HTTPS://HOOKS.EXAMPLE.COM/",
        "http://h:8080",
    ],
)
async def test_the_claims_origin_is_the_log_lines(database: Database, url: str) -> None:
    """What the claim compares and returns (outbox.ORIGIN, in SQL) is what a log line names
    (deliverer.origin): one receiver is one origin, however its URLs are spelt."""
    await send(database, url, "rollout-o")
    assert await claim(database, 10, 60, [origin(url)]) == []  # skipped
    [row] = await claim(database, 10, 60, ["http://other.example"])
    assert row.origin == origin(url)


async def test_log_lines_name_a_webhook_by_its_origin(
    database: Database, receiver: Receiver, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook URL often carries a token (a capability): logs show scheme://host:port."""
    caplog.set_level(logging.INFO, logger="tracker.webhooks.deliverer")
    await start(webhook_give_up=0.3)
    receiver.scripts["/cap-PATHTOKEN"] = [500] * 1000
    change = await send(database, receiver.url("/cap-PATHTOKEN") + "?key=QUERYTOKEN#FRAGMENT")
    await until(lambda: _is(database, change, "dead"), "the dead letter")
    lines = [r.getMessage() for r in caplog.records if r.name == "tracker.webhooks.deliverer"]
    assert f"webhook {change} to {receiver.base} failed: answered 500" in lines
    assert f"webhook {change} to {receiver.base} is dead: answered 500" in lines
    leaked = [line for line in lines if "TOKEN" in line or "FRAGMENT" in line]
    assert leaked == []


def test_an_errors_text_keeps_the_urls_origin_only() -> None:
    """aiohttp writes the whole URL into some of its errors' text."""
    url = "https://user:pw@hooks.example:8443/in/PATHTOKEN?key=QUERYTOKEN#frag"
    assert origin(url) == "https://hooks.example:8443"
    assert origin("not a url") == "(not an absolute URL)"
    info = aiohttp.RequestInfo(
        yarl.URL(url), "POST", CIMultiDictProxy(CIMultiDict()), yarl.URL(url)
    )
    answered = aiohttp.ClientResponseError(info, (), status=400, message="Bad status line")
    assert scrub(f"ClientResponseError: {answered}", url) == (
        "ClientResponseError: 400, message='Bad status line', url='https://hooks.example:8443'"
    )
    assert scrub(f"InvalidURL: {aiohttp.InvalidURL(url)}", url) == (
        "InvalidURL: https://hooks.example:8443"
    )
    assert scrub("POST /in/PATHTOKEN?key=QUERYTOKEN failed", url) == "POST /... failed"
