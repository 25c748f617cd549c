"""Unrecognised bodies have limits of their own: a size cap, and a byte budget per ingest token
per UTC day shared by every process through the database. Recognised notifications pay for
neither."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.test_runtime_role import runtime  # noqa: F401 - a fixture

TOKEN = "ingest-token-for-budget-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def unrecognised(size: int, tag: str = "x") -> bytes:
    """A JSON object of no type we project, exactly `size` bytes long."""
    head = b'{"notifyType":"deviceDataChanged","deviceId":"d-%s","pad":"' % tag.encode()
    body = head + b"a" * (size - len(head) - 2) + b'"}'
    assert len(body) == size
    return body


async def post(client: TestClient[Any, Any], body: bytes) -> tuple[int, dict[str, Any], str]:
    response = await client.post("/v1/notifications", data=body, headers=AUTH)
    return response.status, await response.json(), response.headers.get("Retry-After", "")


async def refusals(client: TestClient[Any, Any]) -> list[dict[str, Any]]:
    page = await client.get("/v1/rejected", params={"limit": "1000"})
    items: list[dict[str, Any]] = (await page.json())["items"]
    return items


async def budget_rows(url: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT token, bytes FROM unrecognised_budget ORDER BY token")
    finally:
        await conn.close()
    return [(row["token"], row["bytes"]) for row in rows]


async def test_an_unrecognised_body_over_the_cap_is_413_and_kept_in_rejected(
    make_client: MakeClient, examples: dict[str, bytes]
) -> None:
    client = await make_client(unrecognised_max_bytes=1024, ingest_token=TOKEN)
    status, _, _ = await post(client, unrecognised(1024))
    assert status == 200  # at the cap: kept
    over = unrecognised(1025)
    status, answer, _ = await post(client, over)
    assert status == 413
    assert answer["error"]["code"] == "unrecognised_too_large"
    assert "1025 bytes" in answer["error"]["message"]
    # A recognised notification past the unrecognised cap is not concerned by it.
    document = orjson.loads(examples["oceanconnect-swUpgradeResultNotify"])
    document["resultDesc"] = "r" * 2000
    status, answer, _ = await post(client, orjson.dumps(document))
    assert (status, answer["recognised"]) == (200, True)

    [kept] = await refusals(client)
    assert (kept["status"], kept["code"], kept["size"]) == (413, "unrecognised_too_large", 1025)
    assert kept["sha256"] == hashlib.sha256(over).hexdigest()
    assert kept["truncated"] is True
    assert kept["body"] == over[:1024].decode()  # no more of it than an accepted one keeps


async def test_the_daily_budget_refuses_unrecognised_bodies_with_429_until_midnight(
    make_client: MakeClient, examples: dict[str, bytes], database_url: str
) -> None:
    client = await make_client(unrecognised_daily_bytes=1000, ingest_token=TOKEN)
    for n in range(3):
        assert (await post(client, unrecognised(300, str(n))))[0] == 200  # 900 of 1000
    flood = unrecognised(300, "flood")
    status, answer, retry_after = await post(client, flood)
    assert status == 429
    assert answer["error"]["code"] == "unrecognised_budget_exhausted"
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    assert abs(int(retry_after) - (midnight - now).total_seconds()) <= 5
    assert 0 < int(retry_after) <= 86_400

    # What is left still fits, to the byte; then nothing does.
    assert (await post(client, unrecognised(100, "last")))[0] == 200
    assert (await post(client, unrecognised(80, "over")))[0] == 429
    # Recognised notifications are still accepted, and never draw on the budget.
    for stem, raw in examples.items():
        status, answer, _ = await post(client, raw)
        assert (status, answer["recognised"]) == (200, True), stem

    refused = await refusals(client)
    assert [(r["status"], r["code"]) for r in refused] == [
        (429, "unrecognised_budget_exhausted")
    ] * 2
    assert (refused[0]["size"], refused[0]["sha256"]) == (300, hashlib.sha256(flood).hexdigest())
    assert refused[0]["body"] == flood[:256].decode()  # a short prefix only
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert await budget_rows(database_url) == [(digest, 1000)]  # the token itself is not kept


async def test_recognised_notifications_never_touch_the_budget(
    make_client: MakeClient, examples: dict[str, bytes], database_url: str
) -> None:
    client = await make_client(unrecognised_daily_bytes=1)
    for raw in examples.values():
        assert (await post(client, raw))[0] == 200
    assert await budget_rows(database_url) == []
    assert (await post(client, unrecognised(100)))[0] == 429
    assert await budget_rows(database_url) == []  # a refused body consumes nothing
    open_client = await make_client(unrecognised_daily_bytes=1000)
    assert (await post(open_client, unrecognised(100)))[0] == 200
    assert await budget_rows(database_url) == [("open", 100)]  # no token set: one budget


async def test_the_budget_is_shared_by_two_servers_on_one_database(
    make_client: MakeClient, database_url: str
) -> None:
    """Two app instances (as two workers or hosts would) posting at once: together they log
    exactly as much as the budget allows, not twice as much."""
    size, fits = 200, 10
    first, second = [
        await make_client(unrecognised_daily_bytes=size * fits, ingest_token=TOKEN)
        for _ in range(2)
    ]
    answers = await asyncio.gather(
        *(post((first, second)[n % 2], unrecognised(size, str(n))) for n in range(40))
    )
    statuses = [status for status, _, _ in answers]
    # Each instance posts 20, so with a budget each, 20 would fit: one shared budget, 10. (Both
    # then refuse at least 10: that follows, it needs no assert of its own.)
    assert statuses.count(200) == fits
    assert statuses.count(429) == 40 - fits
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()[:16]
    assert await budget_rows(database_url) == [(digest, size * fits)]


async def test_the_runtime_role_draws_on_the_budget(
    runtime: tuple[str, str],  # noqa: F811 - the fixture imported above
    make_client: MakeClient,
    database_url: str,
) -> None:
    url, _ = runtime
    client = await make_client(database_url=url, unrecognised_daily_bytes=150)
    assert (await post(client, unrecognised(100)))[0] == 200
    assert (await post(client, unrecognised(100)))[0] == 429
    assert await budget_rows(database_url) == [("open", 100)]
