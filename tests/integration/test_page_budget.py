"""Pages of bodies are bounded by bytes as well as rows (issue 12, item 6): a page of a thousand
1 MiB bodies is never built in memory, and following the cursors still yields every item once."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tracker.store import events, rejected

KIB = 1024


def unrecognised(size: int, compressible: bool) -> bytes:
    filler = "a" * size if compressible else base64.b64encode(os.urandom(size * 3 // 4)).decode()
    return json.dumps({"notifyType": "deviceDataChanged", "deviceId": "d", "data": filler}).encode()


async def follow(client: TestClient[Any, Any], path: str) -> list[list[int]]:
    """Every page of a list, as the ids or positions of its items."""
    pages: list[list[int]] = []
    cursor: str | None = None
    while True:
        query = f"{path}?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        document = await (await client.get(query)).json()
        pages.append([item.get("position", item.get("id")) for item in document["items"]])
        cursor = document["next_cursor"]
        if cursor is None:
            return pages


async def test_the_log_is_paged_by_bytes(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bodies of 200 and 600 KiB, unrecognised: past their default cap, which is not tested here.
    client = await make_client(unrecognised_max_bytes=1024 * KIB)
    monkeypatch.setattr(events, "PAGE_BYTES", 500 * KIB)
    positions = []
    for n in range(9):  # incompressible, and compressible to almost nothing (counted as sent)
        body = unrecognised(200 * KIB if n < 6 else 600 * KIB, compressible=n >= 6)
        answer = await client.post("/v1/notifications", data=body)
        assert answer.status == 200
        positions.append((await answer.json())["position"])
    pages = await follow(client, "/v1/events")
    assert [p for page in pages for p in page] == positions  # all, once, in order
    assert [len(page) for page in pages] == [2, 2, 2, 1, 1, 1]  # 2 x 200 KiB fit in 500 KiB


async def test_refused_bodies_are_paged_by_bytes(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each refusal keeps its first 64 KiB (TRACKER_REJECTED_PREFIX_BYTES): two fit in 150 KiB.
    monkeypatch.setattr(rejected, "PAGE_BYTES", 150 * KIB)
    for _ in range(5):
        body = b"not json " + os.urandom(150 * KIB)
        assert (await client.post("/v1/notifications", data=body)).status == 400
    pages = await follow(client, "/v1/rejected")
    assert [p for page in pages for p in page] == [1, 2, 3, 4, 5]
    assert [len(page) for page in pages] == [2, 2, 1]
