"""Guards with real processes: `tracker serve` appending and delivering, a real webhook receiver
on a real port. A receiver that fails gets the change again on every try, then nothing; a change
committed before a kill -9 is delivered after the restart, once; a receiver that hangs holds up
no delivery (measured); a dead letter is listed and retried by an operator. The numbers are
printed (`pytest -s`)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestServer

from testkit.server import TrackerProcess, free_port
from tests.e2e.conftest import StartTracker
from tests.e2e.http import get, post, request
from tests.support.receiver import HANG, Receiver
from tests.support.waiting import until
from tracker.webhooks.signing import SIGNATURE, TIMESTAMP, verify

INGEST, READ, ADMIN = "e2e-guards-ingest-tok", "e2e-guards-read-token", "e2e-guards-admin-tok"
SECRET = "whsec-e2e-guards-0123456"


def env(database_url: str, **more: str) -> dict[str, str]:
    return {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_INGEST_TOKEN": INGEST,
        "TRACKER_READ_TOKEN": READ,
        "TRACKER_ADMIN_TOKEN": ADMIN,
        "TRACKER_WEBHOOK_HOSTS": "127.0.0.1",
        "TRACKER_LOG_LEVEL": "WARNING",
        **more,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def put_guard(tracker: TrackerProcess, name: str, url: str, **scope: str) -> None:
    body = {
        "scope": scope or {"app_id": "app-1"},
        "when": {"failed_above": 0},
        "webhook": {"url": url, "secret": SECRET},
    }
    answer = request(
        "PUT", f"{tracker.url}/v1/guards/{name}", json.dumps(body).encode(), headers=bearer(ADMIN)
    )
    assert answer.status == 201, answer.body


def result(device: str, op: str, sub: str, outcome: str) -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeResultNotify",
            "deviceId": device,
            "appId": "app-1",
            "operationId": op,
            "subOperationId": sub,
            "swUpgradeResult": outcome,
        }
    ).encode()


async def deliver(tracker: TrackerProcess, body: bytes) -> float:
    """POST one delivery; the seconds it took to be answered 200."""
    answer = await asyncio.to_thread(post, tracker.url, body, headers=bearer(INGEST))
    assert answer.status == 200, answer.body
    return answer.seconds


async def test_a_failing_receiver_gets_the_change_once_more_each_try_then_nothing(
    start_tracker: StartTracker, database_url: str, receiver: Receiver
) -> None:
    tracker = start_tracker(env(database_url))
    receiver.scripts["/hook"] = [500, 500, 500]
    put_guard(tracker, "any-failure", receiver.url("/hook"))
    await deliver(tracker, result("d-1", "op-1", "s-1", "FAIL"))

    await until(lambda: len(receiver.hits) >= 4, "four attempts", within=30)
    await asyncio.sleep(3)  # longer than the next backoff would be: no fifth
    assert len(receiver.hits) == 4
    bodies = {hit.body for hit in receiver.hits}
    assert len(bodies) == 1  # the same change, byte for byte, each time
    change = json.loads(next(iter(bodies)))
    assert (change["id"], change["state"]) == ("any-failure:op-1:software:1", "firing")
    assert all(verify(SECRET.encode(), h.body, h.headers[SIGNATURE]) for h in receiver.hits)
    assert all(h.headers[TIMESTAMP].isdigit() for h in receiver.hits)
    gaps = [b.at - a.at for a, b in zip(receiver.hits, receiver.hits[1:], strict=False)]
    assert gaps[2] > gaps[0]  # backing off (0.5-1 s, then 1-2 s, then 2-4 s), not hammering
    metrics = get(tracker.url, "/metrics", headers=bearer(READ)).body.decode()
    assert 'tracker_webhook_deliveries_total{outcome="failed"} 3.0' in metrics
    assert 'tracker_webhook_deliveries_total{outcome="delivered"} 1.0' in metrics
    assert 'tracker_alerts{state="firing"} 1.0' in metrics
    print(f"\n500, 500, 500, 200: attempts {[round(g, 2) for g in gaps]} s apart, then none")


async def test_a_change_committed_before_a_kill_9_arrives_after_the_restart_once(
    start_tracker: StartTracker, database_url: str
) -> None:
    port = free_port()  # nothing listens there yet: the first attempts fail
    url = f"http://127.0.0.1:{port}/hook"
    first = start_tracker(env(database_url))
    put_guard(first, "any-failure", url)
    await deliver(first, result("d-1", "op-1", "s-1", "FAIL"))  # 200: committed, alert and all
    conn = await asyncpg.connect(database_url)
    try:
        await until(
            lambda: _attempted(conn), "a first attempt, refused by the closed port", within=15
        )
        first.kill()  # SIGKILL: no chance to deliver or to clean up
        assert await conn.fetchval("SELECT state FROM webhook_outbox") == "pending"

        hits: list[bytes] = []

        async def hook(request: web.Request) -> web.Response:
            hits.append(await request.read())
            return web.Response()

        app = web.Application()
        app.router.add_post("/hook", hook)
        receiving = TestServer(app, host="127.0.0.1", port=port)
        await receiving.start_server()
        try:
            started = time.monotonic()
            start_tracker(env(database_url))
            await until(lambda: len(hits) >= 1, "the change, after the restart", within=30)
            arrived = time.monotonic() - started
            await asyncio.sleep(2)
            assert len(hits) == 1
            assert json.loads(hits[0])["id"] == "any-failure:op-1:software:1"
            assert await conn.fetchval("SELECT state FROM webhook_outbox") == "delivered"
            assert await conn.fetchval("SELECT count(*) FROM alerts") == 1
        finally:
            await receiving.close()
    finally:
        await conn.close()
    print(f"\nkill -9 with the change pending: delivered once, {arrived:.1f} s after the restart")


async def _attempted(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT attempts > 0 FROM webhook_outbox"))


async def test_a_hanging_receiver_does_not_slow_ingestion(
    start_tracker: StartTracker, database_url: str, receiver: Receiver
) -> None:
    """The same flips of one device's result, first with no guard watching, then with every
    flip firing or resolving an alert whose webhook never answers (held for 30 s each)."""
    tracker = start_tracker(env(database_url, TRACKER_WEBHOOK_TIMEOUT="30"))
    receiver.scripts["/hang"] = [HANG] * 1000
    put_guard(tracker, "hang", receiver.url("/hang"), operation_id="op-watched")
    flips = 80

    async def flip(op: str) -> list[float]:
        return [
            await deliver(tracker, result("d-1", op, f"s-{n:04d}", ("FAIL", "SUCCESS")[n % 2]))
            for n in range(flips)
        ]

    await flip("op-warm-up")
    alone = await flip("op-unwatched")
    hanging = await flip("op-watched")

    assert len(receiver.hits) >= 1  # the deliverer is stuck on the first, as it may be
    conn = await asyncpg.connect(database_url)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM webhook_outbox WHERE state = 'pending'")
        changes = await conn.fetchval(
            "SELECT changes FROM alerts WHERE guard = 'hang' AND operation_id = 'op-watched'"
        )
    finally:
        await conn.close()
    assert changes == flips  # every flip fired or resolved the alert...
    assert pending >= flips - 1  # ...and its webhook waits behind the hanging one
    # A delivery that waited for the receiver would take the webhook timeout (30 s).
    assert max(hanging) < 5.0, max(hanging)
    p50 = (statistics.median(alone), statistics.median(hanging))
    p95 = (
        statistics.quantiles(alone, n=20)[18],
        statistics.quantiles(hanging, n=20)[18],
    )
    print(
        f"\n{flips} deliveries each: no guard p50 {p50[0] * 1000:.2f} ms p95 {p95[0] * 1000:.2f} "
        f"ms; every one firing or resolving an alert whose receiver hangs: p50 "
        f"{p50[1] * 1000:.2f} ms p95 {p95[1] * 1000:.2f} ms (x{p50[1] / p50[0]:.2f} at p50)"
    )


async def test_a_dead_letter_is_listed_and_an_operator_retries_it(
    start_tracker: StartTracker, database_url: str, receiver: Receiver
) -> None:
    tracker = start_tracker(env(database_url, TRACKER_WEBHOOK_GIVE_UP="1"))
    receiver.scripts["/hook"] = [503] * 3
    put_guard(tracker, "any-failure", receiver.url("/hook"))
    await deliver(tracker, result("d-1", "op-1", "s-1", "FAIL"))

    def dead() -> list[dict[str, Any]]:
        answer = get(tracker.url, "/v1/webhooks/dead", headers=bearer(READ))
        assert answer.status == 200
        items: list[dict[str, Any]] = json.loads(answer.body)["items"]
        return items

    await until(lambda: len(dead()) == 1, "a dead letter", within=20)
    [letter] = dead()
    assert (letter["id"], letter["guard"], letter["url"]) == (
        "any-failure:op-1:software:1",
        "any-failure",
        f"{receiver.base}/…",  # the read token sees where it goes, not its path
    )
    whole = get(tracker.url, "/v1/webhooks/dead", headers=bearer(ADMIN))
    assert json.loads(whole.body)["items"][0]["url"] == receiver.url("/hook")
    assert "503" in letter["last_error"]
    hits = len(receiver.hits)
    path = f"{tracker.url}/v1/webhooks/dead/{letter['id']}/retry"
    assert request("POST", path, b"", headers=bearer(READ)).status == 403
    assert request("POST", path, b"", headers=bearer(ADMIN)).status == 202
    await until(lambda: dead() == [], "the retried letter no longer dead", within=20)
    await until(lambda: len(receiver.hits) > hits, "the retry", within=20)
    assert receiver.hits[-1].body == receiver.hits[0].body
    assert request("POST", path, b"", headers=bearer(ADMIN)).status == 404  # not dead any more
