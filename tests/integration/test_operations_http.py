"""Upgrade operations over HTTP: the rollup with its errors and versions, the list of them by
latest activity, and their members (also those that moved on)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.test_projections_http import post_all, result, sw


def fw(device: str, step: str, op: str) -> bytes:
    states = {"0": "idle", "1": "downloading", "2": "downloaded", "3": "updating"}
    return json.dumps(
        {
            "notifyType": "fwUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "app-2",
            "operationId": op,
            "subOperationId": "s",
            "step": step,
            "stepDesc": states[step],
        }
    ).encode()


async def get(client: TestClient[Any, Any], path: str, **params: str) -> dict[str, Any]:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    document: dict[str, Any] = await response.json()
    return document


async def walk(client: TestClient[Any, Any], path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, one page of `limit` at a time."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await get(client, path, **params, **({"cursor": cursor} if cursor else {}))
        items += page["items"]
        if (cursor := page["next_cursor"]) is None:
            return items


async def test_the_rollup_counts_errors_and_target_versions(client: TestClient[Any, Any]) -> None:
    await post_all(
        client,
        *(sw(f"d{i}", "idle") for i in range(6)),
        result("d0", "FAIL", error="E1", desc="download timeout"),
        result("d1", "FAIL", error="E1", desc="download timeout"),
        result("d2", "FAIL", error="E2", desc="no space", target="3"),
        result("d3", "SUCCESS"),
        result("d4", "SUCCESS", target="3"),
    )
    rollup = await get(client, "/v1/operations/op-1")
    assert rollup["devices"] == 6
    assert rollup["states"] == {"idle": 6}
    assert rollup["results"] == {"SUCCESS": 2, "FAIL": 3}
    assert rollup["errors"] == [
        {"error_code": "E1", "result_desc": "download timeout", "devices": 2},
        {"error_code": "E2", "result_desc": "no space", "devices": 1},
    ]
    assert rollup["target_versions"] == {"2": 3, "3": 2}

    # A retry succeeds: the device leaves its error group, and an emptied group goes.
    await post_all(client, result("d2", "SUCCESS", target="3"))
    rollup = await get(client, "/v1/operations/op-1")
    assert rollup["results"] == {"SUCCESS": 3, "FAIL": 2}
    assert rollup["errors"] == [
        {"error_code": "E1", "result_desc": "download timeout", "devices": 2}
    ]


async def test_operations_are_listed_most_recently_active_first(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, sw("a", "downloading", op="first"))
    await post_all(client, fw("b", "1", op="second"))
    await post_all(client, sw("c", "downloading", op="third", app="app-9"))
    await post_all(client, sw("a", "downloaded", op="first"))  # first is active again
    listed = await get(client, "/v1/operations")
    assert [(o["operation_id"], o["track"]) for o in listed["items"]] == [
        ("first", "software"),
        ("third", "software"),
        ("second", "firmware"),
    ]
    assert listed["next_cursor"] is None
    assert listed["items"][0]["states"] == {"downloaded": 1}
    assert [o["operation_id"] for o in await walk(client, "/v1/operations", limit="1")] == [
        "first",
        "third",
        "second",
    ]
    assert [
        o["operation_id"] for o in (await get(client, "/v1/operations", track="firmware"))["items"]
    ] == ["second"]
    assert [
        o["operation_id"] for o in (await get(client, "/v1/operations", app_id="app-9"))["items"]
    ] == ["third"]
    firmware = await get(client, "/v1/operations/second", track="firmware")
    assert firmware["track"] == "firmware"
    assert (await client.get("/v1/operations/second", params={"track": "software"})).status == 404


async def test_members_include_devices_that_moved_on(client: TestClient[Any, Any]) -> None:
    await post_all(
        client,
        sw("a", "downloading"),
        sw("b", "downloading"),
        sw("c", "downloading"),
        result("a", "FAIL", error="E1"),
        result("b", "SUCCESS"),
        sw("a", "idle", op="op-2"),  # a moves on to the next operation
    )
    members = await walk(client, "/v1/operations/op-1/devices", limit="2")
    assert [(m["device_id"], m["state"], m["result"]) for m in members] == [
        ("a", "downloading", "FAIL"),
        ("b", "downloading", "SUCCESS"),
        ("c", "downloading", None),
    ]
    assert members[0]["error_code"] == "E1"
    assert members[0]["target_version"] == "2"

    async def ids(**params: str) -> list[str]:
        page = await get(client, "/v1/operations/op-1/devices", **params)
        return [m["device_id"] for m in page["items"]]

    assert await ids(result="FAIL") == ["a"]
    assert await ids(error_code="E1") == ["a"]
    assert await ids(error_code="E9") == []
    assert await ids(state="downloading", result="SUCCESS") == ["b"]
    assert await ids(track="firmware") == []
    # The device list, by contrast, shows a device's current operation only.
    current = await get(client, "/v1/devices", operation_id="op-1")
    assert [d["device_id"] for d in current["items"]] == ["b", "c"]
    missing = await client.get("/v1/operations/nope/devices")
    assert missing.status == 404


async def test_cursors_do_not_cross_lists(client: TestClient[Any, Any]) -> None:
    await post_all(client, *(sw(f"d{i}", "idle", op=f"op-{i}") for i in range(3)))
    operations = await get(client, "/v1/operations", limit="1")
    devices = await get(client, "/v1/devices", limit="1")
    crossed = await client.get("/v1/devices", params={"cursor": operations["next_cursor"]})
    assert crossed.status == 400
    crossed = await client.get("/v1/operations", params={"cursor": devices["next_cursor"]})
    assert crossed.status == 400
    assert (await crossed.json())["error"]["details"][0]["field"] == "cursor"
