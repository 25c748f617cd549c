"""Reading the projections over HTTP: documents, filters, stuck devices, time travel, tasks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tracker.domain.delivery import decode
from tracker.store import ingestion
from tracker.store.database import Database


def sw(device: str, state: str, op: str = "op-1", app: str = "app-1") -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": app,
            "operationId": op,
            "subOperationId": "s",
            "swUpgradeState": state,
        }
    ).encode()


def result(
    device: str,
    outcome: str,
    op: str = "op-1",
    error: str = "0",
    desc: str = "r",
    target: str = "2",
) -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeResultNotify",
            "deviceId": device,
            "appId": "app-1",
            "operationId": op,
            "subOperationId": "s",
            "curVersion": target if outcome == "SUCCESS" else "1",
            "targetVersion": target,
            "sourceVersion": "1",
            "swUpgradeResult": outcome,
            "upgradeTime": 10,
            "resultDesc": desc,
            "errorCode": error,
            "description": "d",
        }
    ).encode()


async def post_all(client: TestClient[Any, Any], *bodies: bytes) -> list[int]:
    positions: list[int] = []
    for body in bodies:
        response = await client.post("/v1/notifications", data=body)
        assert response.status == 200, await response.text()
        positions.append((await response.json())["position"])
    return positions


async def ids(client: TestClient[Any, Any], path: str, **params: str) -> list[str]:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return [
        item.get("device_id") or item.get("task_id") for item in (await response.json())["items"]
    ]


async def test_device_filters(client: TestClient[Any, Any]) -> None:
    await post_all(
        client,
        sw("a", "downloading"),
        sw("b", "downloading", op="op-2", app="app-2"),
        sw("b", "downloaded", op="op-2", app="app-2"),
        sw("c", "idle"),
        result("c", "SUCCESS"),
        result("a", "FAIL"),
    )
    assert await ids(client, "/v1/devices") == ["a", "b", "c"]
    assert await ids(client, "/v1/devices", state="downloading") == ["a"]
    assert await ids(client, "/v1/devices", operation_id="op-2") == ["b"]
    assert await ids(client, "/v1/devices", app_id="app-2") == ["b"]
    assert await ids(client, "/v1/devices", result="SUCCESS") == ["c"]
    assert await ids(client, "/v1/devices", result="FAIL") == ["a"]
    assert await ids(client, "/v1/devices", track="firmware") == []
    assert await ids(client, "/v1/devices", track="firmware", state="downloading") == []
    page = await (await client.get("/v1/devices", params={"limit": "2"})).json()
    assert [d["device_id"] for d in page["items"]] == ["a", "b"]
    rest = await (
        await client.get("/v1/devices", params={"limit": "2", "cursor": page["next_cursor"]})
    ).json()
    assert ([d["device_id"] for d in rest["items"]], rest["next_cursor"]) == (["c"], None)


async def test_stuck_devices_are_those_long_in_a_state_other_than_idle(
    client: TestClient[Any, Any], database: Database
) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    for raw, when in [
        (sw("old", "downloading"), long_ago),
        (sw("idle-old", "idle"), long_ago),
        (sw("fresh", "updating"), datetime.now(UTC)),
    ]:
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, [decode(raw)], when)
    assert await ids(client, "/v1/devices", stuck_for="3600") == ["old"]
    # Longest stuck first (an index range on state_since, whatever the fleet size).
    assert await ids(client, "/v1/devices", stuck_for="0") == ["old", "fresh"]
    assert await ids(client, "/v1/devices", stuck_for="3600", track="firmware") == []


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "soon", "1e12"])
async def test_a_bad_stuck_for_is_a_400(client: TestClient[Any, Any], bad: str) -> None:
    response = await client.get("/v1/devices", params={"stuck_for": bad})
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["field"] == "stuck_for"


async def test_time_travel_by_position_and_by_time(client: TestClient[Any, Any]) -> None:
    first, second, third = await post_all(
        client, sw("d", "downloading"), sw("d", "downloaded"), result("d", "SUCCESS")
    )
    now = await (await client.get("/v1/devices/d")).json()
    assert (now["software"]["state"], now["software"]["version"]) == ("downloaded", "2")

    then = await (await client.get("/v1/devices/d", params={"at": str(first)})).json()
    assert (then["software"]["state"], then["software"]["version"], then["last_position"]) == (
        "downloading",
        None,
        first,
    )
    assert set(then) == set(now)
    at_second = await (await client.get("/v1/devices/d", params={"at": str(second)})).json()
    assert at_second["software"]["state"] == "downloaded"
    assert at_second["software"]["last_result"] is None
    # By time: just after the second event was received.
    when = at_second["updated_at"]
    by_time = await (await client.get("/v1/devices/d", params={"at": when})).json()
    assert by_time == at_second
    at_last = await (await client.get("/v1/devices/d", params={"at": str(third)})).json()
    assert at_last == now

    before = await client.get("/v1/devices/d", params={"at": "2000-01-01T00:00:00Z"})
    assert before.status == 404
    for bad in ["yesterday", "2026-01-01T00:00:00", "-3"]:
        response = await client.get("/v1/devices/d", params={"at": bad})
        assert response.status == 400, bad


async def test_tasks_and_their_filters(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    body = json.loads(examples["iotda-batchtask-update"])
    for task_id, status, task_type in [
        ("t1", "Waitting", "softwareUpgrade"),
        ("t2", "Processing", "firmwareUpgrade"),
    ]:
        body["notify_data"]["body"].update(task_id=task_id, status=status, task_type=task_type)
        await post_all(client, json.dumps(body).encode())
    assert await ids(client, "/v1/tasks") == ["t1", "t2"]
    assert await ids(client, "/v1/tasks", status="Processing") == ["t2"]
    assert await ids(client, "/v1/tasks", task_type="softwareUpgrade") == ["t1"]
    task = await (await client.get("/v1/tasks/t1")).json()
    assert set(task) == {
        "task_id",
        "app_id",
        "task_type",
        "status",
        "status_desc",
        "event_time",
        "request_id",
        "last_position",
        "updated_at",
        "progress",
        "progress_at",
        "pushed",
        "observed",
        "unpushed",
    }
    assert task["event_time"] == "2015-12-12T12:12:12.000Z"
    # Told by a push alone: nothing read through IoTDA's API, nothing missed.
    assert (task["progress"], task["progress_at"]) == (None, None)
    assert (task["pushed"], task["observed"], task["unpushed"]) == (["Waitting"], [], [])
    assert (await client.get("/v1/tasks/nope")).status == 404
    assert (await client.get("/v1/tasks/nope/transitions")).status == 404
    assert (await client.get("/v1/tasks", params={"status": "Waiting"})).status == 400


async def test_operation_summary_and_unknowns(client: TestClient[Any, Any]) -> None:
    await post_all(
        client,
        sw("a", "downloading"),
        sw("b", "idle"),
        result("b", "FAIL"),
        sw("c", "idle", op="other"),
    )
    summary = await (await client.get("/v1/operations/op-1")).json()
    assert summary.pop("first_seen_at") < summary.pop("last_activity_at")
    assert summary == {
        "operation_id": "op-1",
        "track": "software",
        "app_id": "app-1",
        "devices": 2,
        "states": {"downloading": 1, "idle": 1},
        "results": {"SUCCESS": 0, "FAIL": 1},
        "errors": [{"error_code": "0", "result_desc": "r", "devices": 1}],
        "target_versions": {"2": 1},
        "stuck": None,  # counted when asked: ?stuck_for=
        "platform": "oceanconnect",
        # An IoTDA task's alone (tests/integration/test_iotda_rollouts.py)
        "task_status": None,
        "task_progress": None,
        "progress_at": None,
        "progress_disagrees": None,
    }
    assert (await client.get("/v1/operations/none")).status == 404
    assert (await client.get("/v1/devices/none")).status == 404
    assert (await client.get("/v1/devices/none/transitions")).status == 404
