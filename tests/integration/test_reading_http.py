"""GET /v1/events and /v1/rejected: keyset pages, cursors, parameters checked."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient


async def test_events_are_paged_by_cursor_and_by_after(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    for _ in range(5):
        assert (await client.post("/v1/notifications", data=raw)).status == 200
    seen: list[int] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = await (await client.get("/v1/events", params=params)).json()
        seen += [item["position"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen)
    after = await (await client.get("/v1/events", params={"after": str(seen[2])})).json()
    assert [item["position"] for item in after["items"]] == seen[3:]
    assert after["next_cursor"] is None
    item = after["items"][0]
    assert set(item) == {  # DESIGN.md's five, and what the log adds (EventDocument)
        "position",
        "event_type",
        "stream_id",
        "payload",
        "received_at",
        "stream_type",
        "occurred_at",
        "readmitted_from",
        "pruned",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "-1"}, "after"),
        ({"after": "x"}, "after"),
        ({"after": "\u00b2"}, "after"),
        ({"limit": "\u0665"}, "limit"),
        ({"after": "99999999999999999999"}, "after"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": "eyJhZnRlciI6ICJ4In0"}, "cursor"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/events", "/v1/rejected"])
async def test_bad_parameters_are_400_naming_the_parameter(
    client: TestClient[Any, Any], path: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(path, params=params)
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "invalid_parameter"
    assert error["details"][0]["field"] == field


async def test_health_and_readiness(client: TestClient[Any, Any]) -> None:
    assert await (await client.get("/healthz")).json() == {"status": "ok"}
    assert await (await client.get("/readyz")).json() == {"status": "ready"}


@pytest.mark.parametrize(
    "path",
    [
        "/v1/devices/a%00b",
        "/v1/devices?app_id=%00",
        "/v1/tasks/%00/transitions",
        "/v1/operations/x%00",
    ],
)
async def test_nul_in_a_path_or_query_is_a_400_not_a_database_error(
    client: TestClient[Any, Any], path: str
) -> None:
    response = await client.get(path)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid_parameter"
