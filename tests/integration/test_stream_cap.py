"""Live feeds are capped per process and read through their own pool (issue 12, item 6)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient


async def open_stream(client: TestClient[Any, Any]) -> aiohttp.ClientResponse:
    response = await client.get("/v1/stream")
    if response.status == 200:
        assert (await response.content.readline()).startswith(b"retry:")
    return response


async def test_feeds_beyond_the_cap_get_a_503_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(stream_clients=2)
    first, second = await open_stream(client), await open_stream(client)
    assert (first.status, second.status) == (200, 200)
    third = await open_stream(client)
    assert third.status == 503
    assert third.headers["Retry-After"] == "5"
    assert (await third.json())["error"]["code"] == "too_many_streams"
    first.close()
    for _ in range(50):  # the server notices the client has gone at its next write
        fourth = await open_stream(client)
        if fourth.status == 200:
            break
        await asyncio.sleep(0.1)
    assert fourth.status == 200
    second.close()
    fourth.close()


async def test_open_feeds_leave_ingestion_its_connections(
    make_client: MakeClient, examples: dict[str, bytes]
) -> None:
    """With one connection for ingestion and reads, and many followers polling, every post is
    still answered at once: the followers have a pool of their own."""
    client = await make_client(pool_size=1, stream_clients=20)
    streams = [await open_stream(client) for _ in range(10)]
    assert {s.status for s in streams} == {200}
    slowest = 0.0
    for _ in range(30):
        started = time.monotonic()
        answer = await client.post(
            "/v1/notifications", data=examples["oceanconnect-swUpgradeStateChangeNotify"]
        )
        assert answer.status == 200
        slowest = max(slowest, time.monotonic() - started)
    assert slowest < 1.0, slowest
    for stream in streams:
        stream.close()
