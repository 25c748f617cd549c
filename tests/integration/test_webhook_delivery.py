"""Webhook delivery (tracker/webhooks/) against a real aiohttp receiver on a real loopback port:
once, signed, after commit; retried with backoff until 2xx; in order per ordering key, with a
hanging receiver holding up nobody else; dead past the give-up time, and back by `retry`;
never to a target the policy refuses; never for a transaction that rolled back."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from tests.support.cli import tracker
from tests.support.postgres import as_role
from tests.support.receiver import HANG, Receiver
from tests.support.waiting import until
from tracker import metrics
from tracker.config import Settings
from tracker.store.database import Database
from tracker.store.errors import NotFound
from tracker.store.outbox import Outgoing, dead_letters, enqueue, retry
from tracker.webhooks.deliverer import Deliverer
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
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await runtime.close()
        await database.fetch("drop role", f'DROP OWNED BY "{role}"')
        await database.fetch("drop role", f'DROP ROLE "{role}"')
