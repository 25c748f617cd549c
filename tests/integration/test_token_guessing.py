"""Guessing tokens through the API is slowed per client (http/attempts.py), and behind a proxy
we trust the client and the scheme are the forwarded ones (http/forwarded.py)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tracker.http import session
from tracker.http.attempts import BUDGET

INGEST, READ = "ingest-token-of-the-guessing-test", "read-token-of-the-guessing-test"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def guarded(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(ingest_token=INGEST, read_token=READ)


@pytest.fixture
async def elsewhere() -> AsyncIterator[aiohttp.ClientSession]:
    """Another client: requests from 127.0.0.2 (all of 127.0.0.0/8 is this machine)."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as other:
        yield other


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_past_the_budget_a_client_waits_and_another_does_not(
    guarded: TestClient[Any, Any], elsewhere: aiohttp.ClientSession, examples: dict[str, bytes]
) -> None:
    raw = examples["iotda-batchtask-update"]
    statuses = []
    started = time.perf_counter()
    for n in range(BUDGET + 5):
        query = f"?token=guess-{n}" if n % 2 else ""  # the URL form counts the same
        answer = await guarded.post(
            f"/v1/notifications{query}", data=raw, headers={} if n % 2 else bearer(f"guess-{n}")
        )
        statuses.append(answer.status)
    took = time.perf_counter() - started
    assert statuses == [401] * BUDGET + [429] * 5
    refused = await guarded.get("/v1/events", headers=bearer(READ))
    assert refused.status == 429  # over budget: not even the right token is compared
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert (await refused.json())["error"]["code"] == "too_many_attempts"
    print(f"\n{BUDGET + 5} wrong tokens answered in {took:.3f} s: {statuses.count(429)} were 429")
    assert took < 2.5  # nobody was made to sleep

    url = guarded.make_url("/v1/events")
    async with elsewhere.get(url, headers=bearer(READ)) as answer:
        assert answer.status == 200  # another client holding the token
    async with elsewhere.post(guarded.make_url("/v1/notifications"), data=raw) as answer:
        assert answer.status == 401  # no token at all is not a guess, and not throttled


async def test_the_platform_is_never_slowed_by_its_own_successes(
    guarded: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    raw = examples["iotda-batchtask-update"]
    for n in range(BUDGET - 1):
        wrong = await guarded.post(f"/v1/notifications?token=guess-{n}", data=raw)
        assert wrong.status == 401
    for _ in range(5 * BUDGET):  # a burst of deliveries, each with the right token
        posted = await guarded.post(f"/v1/notifications?token={INGEST}", data=raw)
        assert posted.status == 200
    assert (await guarded.post("/v1/notifications?token=last-guess", data=raw)).status == 401
    assert (await guarded.post(f"/v1/notifications?token={INGEST}", data=raw)).status == 429


async def test_wrong_sign_ins_count_too_and_are_answered_at_once(
    guarded: TestClient[Any, Any], elsewhere: aiohttp.ClientSession
) -> None:
    started = time.perf_counter()
    for n in range(BUDGET):
        answer = await guarded.post(
            "/v1/session", data=json.dumps({"token": f"g{n}"}), headers=JSON
        )
        assert answer.status == 401
    took = time.perf_counter() - started
    print(f"\n{BUDGET} wrong sign-ins answered in {took:.3f} s (0.5 s each before: a sleep)")
    assert took < BUDGET * 0.5 / 4
    right = json.dumps({"token": READ})
    assert (await guarded.post("/v1/session", data=right, headers=JSON)).status == 429
    assert (await guarded.get("/v1/events", headers=bearer(READ))).status == 429  # one budget
    async with elsewhere.post(guarded.make_url("/v1/session"), data=right, headers=JSON) as ok:
        assert ok.status == 200


@pytest.mark.parametrize("trusted", [True, False])
async def test_behind_a_trusted_proxy_the_cookie_is_secure_and_clients_are_forwarded(
    make_client: MakeClient, *, trusted: bool
) -> None:
    client = await make_client(ingest_token=INGEST, read_token=READ, trust_proxy=trusted)
    forwarded = {"X-Forwarded-Proto": "https", **JSON}
    answer = await client.post("/v1/session", data=json.dumps({"token": READ}), headers=forwarded)
    assert answer.status == 200
    cookie = answer.cookies[session.COOKIE]
    assert bool(cookie["secure"]) is trusted
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    client.session.cookie_jar.clear()  # the guessers below hold no session

    # One guesser behind the proxy, then another: the budget is per forwarded address when
    # the proxy is trusted, and the proxy's own (here, ours) when it is not.
    def by(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"198.51.100.1, {address}", **bearer("guess")}

    for _ in range(BUDGET):
        assert (await client.get("/v1/events", headers=by("203.0.113.7"))).status == 401
    assert (await client.get("/v1/events", headers=by("203.0.113.7"))).status == 429
    other = await client.get("/v1/events", headers=by("203.0.113.8"))
    assert other.status == (401 if trusted else 429)
    spoofed = {"X-Forwarded-For": "203.0.113.8, 203.0.113.7", **bearer(READ)}
    assert (await client.get("/v1/events", headers=spoofed)).status == 429  # the last hop counts
