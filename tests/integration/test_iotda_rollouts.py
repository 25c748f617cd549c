"""IoTDA batch tasks as rollouts (issue 24): what the reconciler observes of a task and its
subtasks reads through the same documents as an OceanConnect operation, over HTTP and the CLI,
and every answer is one the OpenAPI document describes."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.test_projections_http import post_all, sw
from tests.support.cli import tracker
from tracker.domain.delivery import decode_written
from tracker.http.openapi import document as openapi
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit

TASK = "task-iot"
FIRST_READ = datetime(2026, 12, 7, 8, tzinfo=UTC)
_reads = itertools.count()  # each observation is a read of its own, a second after the last
REQUEST = "GET /v5/iot/p/batchtasks/task-iot"
# IoTDA's counters as the tests below set them: they agree with the members' unless changed.
PROGRESS = {
    "total": 6,
    "processing": 1,
    "success": 1,
    "fail": 2,
    "waitting": 1,
    "fail_wait_retry": 1,
    "stopped": 0,
    "removed": 0,
}


def read_at() -> str:
    """When the next read is made (as RFC 3339, as the reconciler writes it)."""
    return (FIRST_READ + timedelta(seconds=next(_reads))).isoformat().replace("+00:00", "Z")


def subtask(
    device: str,
    status: str,
    error: tuple[str, str] | None = None,
    task: str = TASK,
    task_type: str = "firmwareUpgrade",
) -> bytes:
    detail: dict[str, Any] = {"target": device, "status": status, "output": f"{status} output"}
    if error is not None:
        detail["error"] = {"error_code": error[0], "error_msg": error[1]}
    return json.dumps(
        {
            "observed_at": read_at(),
            "request": REQUEST,
            "app_id": "app-iot",
            "task_id": task,
            "task_type": task_type,
            "detail": detail,
        }
    ).encode()


def batchtask(
    status: str, progress: dict[str, int] | None = None, task: str = TASK, at: str | None = None
) -> bytes:
    body: dict[str, Any] = {
        "task_id": task,
        "task_type": "firmwareUpgrade",
        "status": status,
        "status_desc": None,
        "create_time": "20261207T075500Z",
    }
    if progress is not None:
        body["task_progress"] = progress
    return json.dumps(
        {
            "observed_at": at or read_at(),
            "request": REQUEST,
            "app_id": "app-iot",
            "batchtask": body,
        }
    ).encode()


def pushed(status: str, task: str = TASK, event_time: str = "20261207T080500Z") -> bytes:
    return json.dumps(
        {
            "resource": "batchtask",
            "event": "update",
            "event_time": event_time,
            "notify_data": {
                "body": {
                    "task_id": task,
                    "task_type": "firmwareUpgrade",
                    "app_id": "app-iot",
                    "status": status,
                }
            },
        }
    ).encode()


@pytest.fixture
async def observe(database: Database) -> AsyncIterator[Any]:
    """Append what the reconciler would: events of its own types, through the group commit."""
    appends = GroupCommit(database)

    async def append(event_type: str, *bodies: bytes) -> None:
        for body in bodies:  # one at a time: a device's observations in the order made
            await appends.append(decode_written(event_type, body))

    yield append
    await appends.close()


async def a_task(
    observe: Any, progress: dict[str, int] | None = PROGRESS, at: str | None = None
) -> None:
    """Six devices of one firmware task, in every busy status and both results."""
    await observe("iotda.batchtask.observed", batchtask("Processing", progress, at=at))
    await observe(
        "iotda.subtask.observed",
        subtask("d-wait", "Waitting"),
        subtask("d-run", "Waitting"),
        subtask("d-ok", "Waitting"),
        subtask("d-run", "Processing"),
        subtask("d-ok", "Processing"),
        subtask("d-ok", "Success"),
        subtask("d-fail-1", "Fail", ("E-TIMEOUT", "download timed out")),
        subtask("d-fail-2", "Fail", ("E-TIMEOUT", "download timed out")),
        subtask("d-retry", "FailWaitRetry", ("E-BUSY", "device busy")),
    )


async def get(client: TestClient[Any, Any], path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    found = await response.json()
    conforms(path, found)
    return found


def conforms(path: str, found: object) -> None:
    """The answer is one the OpenAPI document describes for this path."""
    described = openapi()
    template = next(
        p
        for p in described["paths"]
        if len(p.split("/")) == len(path.split("/"))
        and all(
            a == b or a.startswith("{") for a, b in zip(p.split("/"), path.split("/"), strict=True)
        )
    )
    ok = described["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]
    schema = {**ok["schema"], "components": described["components"]}
    jsonschema_rs.validator_for(schema).validate(found)


async def test_an_iotda_task_is_a_rollout_with_its_counters_states_and_errors(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await a_task(observe, at="2026-12-07T07:00:00Z")
    rollup = await get(client, f"/v1/operations/{TASK}")
    assert rollup["platform"] == "iotda"
    assert rollup["track"] == "firmware"
    assert rollup["app_id"] == "app-iot"
    assert rollup["devices"] == 6
    assert rollup["states"] == {
        "Waitting": 1,
        "Processing": 1,
        "Success": 1,
        "Fail": 2,
        "FailWaitRetry": 1,
    }
    assert rollup["results"] == {"SUCCESS": 1, "FAIL": 2}
    assert rollup["errors"] == [
        {"error_code": "E-TIMEOUT", "result_desc": "download timed out", "devices": 2}
    ]
    assert rollup["task_status"] == "Processing"
    assert rollup["task_progress"] == PROGRESS
    assert rollup["progress_at"] == "2026-12-07T07:00:00Z"
    assert rollup["progress_disagrees"] is False
    assert rollup["stuck"] is None

    # The platform counts one more success than the devices read so far: the rollout says so.
    await observe(
        "iotda.batchtask.observed", batchtask("Processing", {**PROGRESS, "success": 2, "total": 7})
    )
    rollup = await get(client, f"/v1/operations/{TASK}")
    assert rollup["task_progress"]["success"] == 2
    assert rollup["progress_disagrees"] is True
    assert rollup["devices"] == 6  # the members are what they are

    # The device read next brings them back in step.
    await observe("iotda.subtask.observed", subtask("d-late", "Success"))
    rollup = await get(client, f"/v1/operations/{TASK}")
    assert rollup["progress_disagrees"] is False
    assert rollup["states"]["Success"] == 2


async def test_a_task_whose_counters_were_never_read_compares_nothing(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await a_task(observe, progress=None)
    rollup = await get(client, f"/v1/operations/{TASK}")
    assert rollup["platform"] == "iotda"
    assert rollup["task_progress"] is None
    assert rollup["progress_at"] is None
    assert rollup["progress_disagrees"] is None


async def test_an_oceanconnect_operation_says_its_platform_and_has_no_task(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, sw("d-oc", "downloading", op="op-oc"))
    rollup = await get(client, "/v1/operations/op-oc")
    assert rollup["platform"] == "oceanconnect"
    assert rollup["states"] == {"downloading": 1}
    for field in ("task_status", "task_progress", "progress_at", "progress_disagrees"):
        assert rollup[field] is None, field


async def test_the_list_of_rollouts_has_iotda_tasks_beside_oceanconnect_operations(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await post_all(client, sw("d-oc", "downloading", op="op-oc"))
    await a_task(observe)
    listed = (await get(client, "/v1/operations"))["items"]
    assert [(r["operation_id"], r["platform"]) for r in listed] == [
        (TASK, "iotda"),  # the most recently active first
        ("op-oc", "oceanconnect"),
    ]
    assert listed[0] == await get(client, f"/v1/operations/{TASK}")
    assert [
        r["operation_id"] for r in (await get(client, "/v1/operations", track="firmware"))["items"]
    ] == [TASK]
    assert [
        r["operation_id"] for r in (await get(client, "/v1/operations", app_id="app-iot"))["items"]
    ] == [TASK]


async def test_members_are_filtered_by_subtask_status(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await a_task(observe)
    page = await get(client, f"/v1/operations/{TASK}/devices", state="Fail")
    assert [m["device_id"] for m in page["items"]] == ["d-fail-1", "d-fail-2"]
    first = page["items"][0]
    assert first["state"] == "Fail"
    assert first["result"] == "FAIL"
    assert first["error_code"] == "E-TIMEOUT"
    assert first["result_desc"] == "download timed out"
    assert first["state_since"] is not None
    failed = await get(client, f"/v1/operations/{TASK}/devices", error_code="E-TIMEOUT")
    assert [m["device_id"] for m in failed["items"]] == ["d-fail-1", "d-fail-2"]
    waiting = await get(
        client, f"/v1/operations/{TASK}/devices", state="Waitting", track="firmware"
    )
    assert [m["device_id"] for m in waiting["items"]] == ["d-wait"]
    everyone = await get(client, f"/v1/operations/{TASK}/devices")
    assert len(everyone["items"]) == 6
    wrong = await client.get(f"/v1/operations/{TASK}/devices", params={"state": "Pending"})
    assert wrong.status == 400


async def test_stuck_members_of_an_iotda_task_are_counted_and_listed_longest_first(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await a_task(observe)
    await asyncio.sleep(0.05)  # now() moves past the observations' receive times
    rollup = await get(client, f"/v1/operations/{TASK}", stuck_for="0")
    assert rollup["stuck"] == 3  # Waitting, Processing, FailWaitRetry: not Success nor Fail
    assert (await get(client, f"/v1/operations/{TASK}", stuck_for="3600"))["stuck"] == 0
    listed = (await get(client, "/v1/operations", stuck_for="0"))["items"]
    assert [r["stuck"] for r in listed] == [3]

    stuck = await get(client, f"/v1/operations/{TASK}/devices", stuck_for="0")
    # In the order they entered their status: d-wait and d-run were both observed Waitting
    # first, but d-run has been Processing only since later; d-retry came last.
    assert [m["device_id"] for m in stuck["items"]] == ["d-wait", "d-run", "d-retry"]
    assert [m["state"] for m in stuck["items"]] == ["Waitting", "Processing", "FailWaitRetry"]
    since = [datetime.fromisoformat(m["state_since"]) for m in stuck["items"]]
    assert since == sorted(since)
    paged: list[str] = []
    cursor: str | None = None
    while True:
        params = {"stuck_for": "0", "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = await get(client, f"/v1/operations/{TASK}/devices", **params)
        paged += [m["device_id"] for m in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == ["d-wait", "d-run", "d-retry"]
    none = await get(client, f"/v1/operations/{TASK}/devices", stuck_for="3600")
    assert none["items"] == []

    # A busy device that moves on is no longer stuck.
    await observe("iotda.subtask.observed", subtask("d-wait", "Processing"))
    await asyncio.sleep(0.05)
    rollup = await get(client, f"/v1/operations/{TASK}", stuck_for="0")
    assert rollup["stuck"] == 3
    stuck = await get(client, f"/v1/operations/{TASK}/devices", stuck_for="0")
    assert [m["device_id"] for m in stuck["items"]] == ["d-run", "d-retry", "d-wait"]


async def test_stuck_members_are_an_iotda_tasks_alone(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await post_all(client, sw("d-oc", "downloading", op="op-oc"))
    await a_task(observe)
    refused = await client.get("/v1/operations/op-oc/devices", params={"stuck_for": "0"})
    assert refused.status == 400
    assert "GET /v1/devices?operation_id=&stuck_for=" in (await refused.json())["error"]["message"]
    missing = await client.get("/v1/operations/nothing/devices", params={"stuck_for": "0"})
    assert missing.status == 404
    mixed = await client.get(
        f"/v1/operations/{TASK}/devices", params={"stuck_for": "0", "state": "Waitting"}
    )
    assert mixed.status == 400
    foreign = await client.get(
        f"/v1/operations/{TASK}/devices",
        params={
            "cursor": (await get(client, f"/v1/operations/{TASK}/devices", limit="1"))[
                "next_cursor"
            ],
            "stuck_for": "0",
        },
    )
    assert foreign.status == 400  # a cursor of the other listing's shape


async def test_a_status_seen_by_reconciliation_and_never_pushed_is_shown(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await post_all(client, pushed("Processing", event_time="20261207T065800Z"))
    read = "2026-12-07T07:00:00Z"
    await observe("iotda.batchtask.observed", batchtask("Processing", PROGRESS, at=read))
    task = await get(client, f"/v1/tasks/{TASK}")
    assert task["pushed"] == ["Processing"]
    assert task["observed"] == ["Processing"]
    assert task["unpushed"] == []
    assert task["progress"] == PROGRESS
    assert task["progress_at"] == read

    # The push of its end was lost: a read sees it.
    done = {**PROGRESS, "processing": 0, "waitting": 0, "fail_wait_retry": 0, "success": 4}
    read = "2026-12-07T07:02:00Z"
    await observe("iotda.batchtask.observed", batchtask("PartialSuccess", done, at=read))
    task = await get(client, f"/v1/tasks/{TASK}")
    assert task["status"] == "PartialSuccess"
    assert task["observed"] == ["Processing", "PartialSuccess"]  # in the machine's order
    assert task["unpushed"] == ["PartialSuccess"]
    assert task["progress"] == done
    transitions = (await get(client, f"/v1/tasks/{TASK}/transitions"))["items"]
    assert [(t["to_status"], t["source"]) for t in transitions] == [
        ("Processing", "push"),
        ("PartialSuccess", "reconciliation"),
    ]
    listed = (await get(client, "/v1/tasks"))["items"]
    assert listed == [task]

    # The push arrives after all: nothing is missing any more.
    await post_all(client, pushed("PartialSuccess", event_time="20261207T070100Z"))
    task = await get(client, f"/v1/tasks/{TASK}")
    assert task["pushed"] == ["Processing", "PartialSuccess"]
    assert task["unpushed"] == []


async def test_a_pushed_only_task_has_no_progress_and_nothing_unpushed(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, pushed("Waitting"))
    task = await get(client, f"/v1/tasks/{TASK}")
    assert task["progress"] is None
    assert task["progress_at"] is None
    assert task["pushed"] == ["Waitting"]
    assert task["observed"] == []
    assert task["unpushed"] == []


async def test_an_iotda_device_has_its_tasks_and_its_subtask_history(
    client: TestClient[Any, Any], observe: Any
) -> None:
    await a_task(observe)
    await observe(
        "iotda.subtask.observed",
        subtask("d-ok", "Waitting", task="task-sw", task_type="softwareUpgrade"),
    )
    device = await get(client, "/v1/devices/d-ok")
    assert device["software"] is None
    assert device["firmware"] is None
    assert device["app_id"] == "app-iot"
    assert [(t["task_id"], t["track"], t["status"]) for t in device["tasks"]] == [
        ("task-sw", "software", "Waitting"),  # the latest first
        (TASK, "firmware", "Success"),
    ]
    assert device["last_position"] == device["tasks"][0]["last_position"]
    assert device["updated_at"] == device["tasks"][0]["updated_at"]
    failed = (await get(client, "/v1/devices/d-fail-1"))["tasks"]
    assert [(t["error_code"], t["error_msg"]) for t in failed] == [
        ("E-TIMEOUT", "download timed out")
    ]

    history = (await get(client, "/v1/devices/d-ok/transitions"))["items"]
    assert [(t["kind"], t["from_state"], t["to_state"], t["operation_id"]) for t in history] == [
        ("subtask", None, "Waitting", TASK),
        ("subtask", "Waitting", "Processing", TASK),
        ("subtask", "Processing", "Success", TASK),
        ("subtask", None, "Waitting", "task-sw"),
    ]
    assert all(t["valid"] for t in history)
    assert history[2]["result"]["result"] == "SUCCESS"
    assert history[2]["result"]["description"] == "Success output"

    # As it was before its software task: time travel folds observations too.
    before = await get(client, "/v1/devices/d-ok", at=str(history[2]["position"]))
    assert [(t["task_id"], t["status"]) for t in before["tasks"]] == [(TASK, "Success")]
    assert before["last_position"] == history[2]["position"]

    # Listed with the fleet, tasks and all, also when no track names it.
    listed = await get(client, "/v1/devices")
    assert [d["device_id"] for d in listed["items"]] == sorted(
        ["d-wait", "d-run", "d-ok", "d-fail-1", "d-fail-2", "d-retry"]
    )
    assert next(d for d in listed["items"] if d["device_id"] == "d-ok") == device
    paged: list[str] = []
    cursor: str | None = None
    while True:
        page = await get(client, "/v1/devices", limit="2", **({"cursor": cursor} if cursor else {}))
        paged += [d["device_id"] for d in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert paged == [d["device_id"] for d in listed["items"]]

    missing = await client.get("/v1/devices/nobody")
    assert missing.status == 404


async def test_a_device_lists_its_latest_twenty_tasks(
    client: TestClient[Any, Any], observe: Any
) -> None:
    for n in range(23):
        await observe("iotda.subtask.observed", subtask("d-busy", "Waitting", task=f"t-{n:02d}"))
    tasks = (await get(client, "/v1/devices/d-busy"))["tasks"]
    assert [t["task_id"] for t in tasks] == [f"t-{n:02d}" for n in range(22, 2, -1)]


async def test_the_cli_prints_the_same_documents(
    client: TestClient[Any, Any], observe: Any, database_url: str
) -> None:
    await a_task(observe)
    await observe(
        "iotda.batchtask.observed", batchtask("Processing", {**PROGRESS, "success": 2, "total": 7})
    )
    shown = await asyncio.to_thread(tracker, database_url, "operation", TASK, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == await get(client, f"/v1/operations/{TASK}")

    shown = await asyncio.to_thread(tracker, database_url, "operation", TASK)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1] == "platform IoTDA: batch task Processing"
    assert "FailWaitRetry" in shown.stdout
    assert "DISAGREES" in shown.stdout
    assert "E-TIMEOUT" in shown.stdout

    shown = await asyncio.to_thread(
        tracker, database_url, "operation", TASK, "--devices", "--state", "Fail", "--json"
    )
    assert shown.returncode == 0, shown.stderr
    assert [m["device_id"] for m in json.loads(shown.stdout)] == ["d-fail-1", "d-fail-2"]

    done = {**PROGRESS, "processing": 0, "waitting": 0, "fail_wait_retry": 0, "success": 4}
    await observe("iotda.batchtask.observed", batchtask("PartialSuccess", done))
    shown = await asyncio.to_thread(tracker, database_url, "task", TASK)
    assert shown.returncode == 0, shown.stderr
    assert "NEVER PUSHED (a lost push): Processing, PartialSuccess" in shown.stdout
    shown = await asyncio.to_thread(tracker, database_url, "task", TASK, "--json")
    assert json.loads(shown.stdout) == await get(client, f"/v1/tasks/{TASK}")

    shown = await asyncio.to_thread(tracker, database_url, "device", "d-fail-1")
    assert shown.returncode == 0, shown.stderr
    assert TASK in shown.stdout
    assert "download timed out" in shown.stdout
    shown = await asyncio.to_thread(tracker, database_url, "device", "d-fail-1", "--json")
    assert json.loads(shown.stdout) == await get(client, "/v1/devices/d-fail-1")


def test_the_document_names_the_platform_and_the_new_states() -> None:
    schemas = openapi()["components"]["schemas"]
    operation = schemas["OperationDocument"]["properties"]
    assert operation["platform"]["enum"] == ["oceanconnect", "iotda"]
    assert "platform" in operation["platform"]["description"]
    member = schemas["OperationMemberDocument"]["properties"]["state"]
    assert "Waitting" in json.dumps(member)
    kinds = schemas["DeviceTransitionDocument"]["properties"]["kind"]
    assert "subtask" in json.dumps(kinds)
    assert "unpushed" in schemas["TaskDocument"]["required"]
