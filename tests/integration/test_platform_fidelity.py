"""Platform fidelity (issue 11) over HTTP: what the platforms really send, and their machines."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

MISSING = object()


def sw(device: str, state: str, op: str = "op-1", sub: str = "s") -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "app-1",
            "operationId": op,
            "subOperationId": sub,
            "swUpgradeState": state,
        }
    ).encode()


def fw(device: str, step: Any, step_desc: str, op: str = "op-1", sub: str = "s") -> bytes:
    return json.dumps(
        {
            "notifyType": "fwUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "app-1",
            "operationId": op,
            "subOperationId": sub,
            "step": step,
            "stepDesc": step_desc,
        }
    ).encode()


def sw_result(
    device: str,
    outcome: Any = "SUCCESS",
    op: str = "op-1",
    sub: str = "s",
    **fields: Any,
) -> bytes:
    """A result; `fields` override or add platform fields, MISSING leaves one out."""
    body = {
        "notifyType": "swUpgradeResultNotify",
        "deviceId": device,
        "appId": "app-1",
        "operationId": op,
        "subOperationId": sub,
        "curVersion": "2.0",
        "targetVersion": "2.0",
        "sourceVersion": "1.0",
        "swUpgradeResult": outcome,
        "upgradeTime": "10",
        "resultDesc": "r",
        "errorCode": "0",
        "description": "d",
    }
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not MISSING}).encode()


def task(
    task_id: str,
    status: Any,
    second: int = 0,
    request_id: str | None = None,
    task_type: str = "softwareUpgrade",
    event_time_ms: str | None = None,
) -> bytes:
    return json.dumps(
        {
            "resource": "batchtask",
            "event": "update",
            "event_time": f"20261127T0100{second:02d}Z",
            "event_time_ms": event_time_ms or f"2026-11-27T01:00:{second:02d}.000Z",
            "request_id": request_id or f"{task_id}-{second}",
            "notify_data": {
                "body": {
                    "status_desc": "d",
                    "task_id": task_id,
                    "task_type": task_type,
                    "app_id": "app-1",
                    "status": status,
                }
            },
        }
    ).encode()


async def post_all(client: TestClient[Any, Any], *bodies: bytes) -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = []
    for body in bodies:
        response = await client.post("/v1/notifications", data=body)
        assert response.status == 200, await response.text()
        answers.append(await response.json())
    return answers


async def get(client: TestClient[Any, Any], path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return await response.json()


async def transitions(client: TestClient[Any, Any], path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await get(client, f"{path}/transitions", limit="1000"))["items"]
    return items


# 1. Descriptive fields may be missing or null.


async def test_a_result_without_description_is_projected_and_counted(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, sw("d", "downloading"), sw_result("d", description=MISSING))
    software = (await get(client, "/v1/devices/d"))["software"]
    assert software["last_result"]["result"] == "SUCCESS"
    assert software["last_result"]["description"] is None
    operation = await get(client, "/v1/operations/op-1")
    assert operation["results"]["SUCCESS"] == 1


async def test_a_result_with_null_error_code_and_description_keeps_the_nulls(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, sw_result("d", "FAIL", errorCode=None, description=None))
    last = (await get(client, "/v1/devices/d"))["software"]["last_result"]
    assert (last["result"], last["error_code"], last["description"]) == ("FAIL", None, None)


async def test_a_result_without_versions_has_no_anomaly_and_keeps_the_version(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, sw_result("d", curVersion="1.0", targetVersion="1.0"))
    await post_all(
        client,
        sw_result(
            "d", "FAIL", sub="s2", curVersion=MISSING, targetVersion=MISSING, sourceVersion=MISSING
        ),
    )
    software = (await get(client, "/v1/devices/d"))["software"]
    assert software["last_result"]["result"] == "FAIL"
    assert software["last_result"]["anomaly"] is None
    assert software["version"] == "1.0"


# 2. Platform times.


async def test_an_event_time_ms_without_milliseconds_is_accepted(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, task("t", "Waitting", 3, event_time_ms="2026-11-27T01:02:03Z"))
    shown = await get(client, "/v1/tasks/t")
    assert (shown["status"], shown["event_time"]) == ("Waitting", "2026-11-27T01:02:03.000Z")


# 3. The task statuses IoTDA uses, and task types we do not project.


async def test_initializing_and_stopping_are_valid_task_statuses(
    client: TestClient[Any, Any],
) -> None:
    await post_all(
        client,
        *(
            task("t", status, second)
            for second, status in enumerate(
                ["Initializing", "Waitting", "Processing", "Stopping", "Stopped"]
            )
        ),
    )
    trail = await transitions(client, "/v1/tasks/t")
    assert [(t["from_status"], t["to_status"], t["valid"]) for t in trail] == [
        (None, "Initializing", True),
        ("Initializing", "Waitting", True),
        ("Waitting", "Processing", True),
        ("Processing", "Stopping", True),
        ("Stopping", "Stopped", True),
    ]
    assert (await get(client, "/v1/tasks/t"))["status"] == "Stopped"


async def test_a_task_of_another_type_is_logged_not_projected(client: TestClient[Any, Any]) -> None:
    [answer] = await post_all(client, task("c", "Processing", task_type="createDevices"))
    assert answer["recognised"] is False
    assert (await client.get("/v1/tasks/c")).status == 404
    logged = (await get(client, "/v1/events", after="0"))["items"]
    assert [(e["stream_type"], e["stream_id"]) for e in logged] == [("task", "c")]
    assert logged[0]["payload"]["notify_data"]["body"]["task_type"] == "createDevices"


# 4. step and stepDesc.


async def test_step_is_followed_when_step_desc_disagrees_and_marked_inconsistent(
    client: TestClient[Any, Any],
) -> None:
    await post_all(client, fw("d", "1", "idle"), fw("d", "2", "downloaded"))
    assert (await get(client, "/v1/devices/d"))["firmware"]["state"] == "downloaded"
    trail = await transitions(client, "/v1/devices/d")
    assert [(t["to_state"], t["inconsistent"]) for t in trail] == [
        ("downloading", True),
        ("downloaded", False),
    ]


# 5. The device machine.


async def test_an_update_that_failed_back_to_downloaded_shows_its_furthest_step_and_fail(
    client: TestClient[Any, Any],
) -> None:
    # The second `downloaded` is byte for byte the first: it cannot be told from the
    # platform's re-push of it, so it records nothing; the FAIL says what happened.
    await post_all(
        client, *(sw("d", s) for s in ["downloading", "downloaded", "updating", "downloaded"])
    )
    trail = await transitions(client, "/v1/devices/d")
    assert [t["to_state"] for t in trail] == ["downloading", "downloaded", "updating"]
    await post_all(client, sw_result("d", "FAIL", curVersion="1.0", targetVersion="2.0"))
    software = (await get(client, "/v1/devices/d"))["software"]
    assert (software["state"], software["last_result"]["result"]) == ("updating", "FAIL")
    # updating -> downloaded is a move the machine makes (LwM2M), under any sub-operation.
    await post_all(client, sw("e", "updating", sub="s1"), sw("e", "downloaded", sub="s2"))
    last = (await transitions(client, "/v1/devices/e"))[-1]
    assert (last["from_state"], last["to_state"], last["valid"], last["applied"]) == (
        "updating",
        "downloaded",
        True,
        True,
    )


# 6. Retried tasks.


@pytest.mark.parametrize("outcome", ["Fail", "PartialSuccess"])
async def test_a_retried_task_goes_back_to_processing_validly(
    client: TestClient[Any, Any], outcome: str
) -> None:
    await post_all(
        client,
        task("t", "Processing", 1),
        task("t", outcome, 2),
        task("t", "Processing", 3),
    )
    trail = await transitions(client, "/v1/tasks/t")
    assert [(t["from_status"], t["to_status"], t["valid"], t["applied"]) for t in trail] == [
        (None, "Processing", True, True),
        ("Processing", outcome, True, True),
        (outcome, "Processing", True, True),
    ]
    assert (await get(client, "/v1/tasks/t"))["status"] == "Processing"


# 7. Late re-pushes.


async def test_a_late_re_push_is_recorded_not_applied_and_its_retry_records_nothing(
    client: TestClient[Any, Any],
) -> None:
    # `downloading` got a 503; the platform pushes it again after `downloaded` got through.
    late = sw("d", "downloading")
    await post_all(client, sw("d", "downloaded"), late)
    trail = await transitions(client, "/v1/devices/d")
    assert len(trail) == 2
    assert (
        trail[1]["from_state"],
        trail[1]["to_state"],
        trail[1]["applied"],
        trail[1]["reason"],
    ) == ("downloaded", "downloading", False, "stale")
    assert (await get(client, "/v1/devices/d"))["software"]["state"] == "downloaded"

    await post_all(client, late)  # the platform pushes it again
    assert len(await transitions(client, "/v1/devices/d")) == 2

    await post_all(client, sw("d", "downloading", sub="s2"))
    last = (await transitions(client, "/v1/devices/d"))[-1]
    assert (last["to_state"], last["sub_operation_id"], last["applied"]) == (
        "downloading",
        "s2",
        True,
    )
    assert (await get(client, "/v1/devices/d"))["software"]["state"] == "downloading"


# 8. Results in the audit trail.


async def test_a_result_is_an_entry_of_the_audit_trail_and_sets_the_last_result(
    client: TestClient[Any, Any],
) -> None:
    await post_all(
        client,
        sw("d", "downloading", op="op-1", sub="s"),
        sw_result("d", "FAIL", op="op-2", sub="s2", curVersion="1.0", targetVersion="2.0"),
    )
    entry = (await transitions(client, "/v1/devices/d"))[-1]
    assert entry["kind"] == "result"
    assert entry["result"]["result"] == "FAIL"
    assert entry["from_state"] == entry["to_state"] == "downloading"
    assert entry["result"]["anomaly"] is False
    assert (entry["applied"], entry["reason"]) == (True, None)
    software = (await get(client, "/v1/devices/d"))["software"]
    # op-1 has not finished: the device is in it, as far as anything says; op-2's FAIL is the
    # last result, and the version it reports the device's.
    assert (software["operation_id"], software["sub_operation_id"]) == ("op-1", "s")
    assert (software["version"], software["last_result"]["operation_id"]) == ("1.0", "op-2")
    assert software["state"] == "downloading"


async def test_a_fail_at_the_target_version_is_an_anomaly(client: TestClient[Any, Any]) -> None:
    await post_all(client, sw_result("d", "FAIL", curVersion="2.0", targetVersion="2.0"))
    last = (await get(client, "/v1/devices/d"))["software"]["last_result"]
    assert (last["result"], last["anomaly"]) == ("FAIL", True)


# 9. A device with its result is not stuck.


async def test_a_device_with_the_result_of_its_sub_operation_is_not_stuck(
    client: TestClient[Any, Any],
) -> None:
    await post_all(
        client,
        sw("done", "downloading"),
        sw_result("done", "FAIL", curVersion="1.0"),
        sw("waiting", "downloading"),
    )
    stuck = await get(client, "/v1/devices", track="software", stuck_for="0")
    assert [d["device_id"] for d in stuck["items"]] == ["waiting"]


@pytest.mark.parametrize("late_first", [False, True], ids=["in-order", "late-first"])
async def test_late_reports_of_an_earlier_operation_neither_make_nor_hide_a_stuck_device(
    client: TestClient[Any, Any], late_first: bool
) -> None:
    # "hung": op-1 finished, op-2 hangs in downloading. "moved": op-1 finished, op-2 done.
    # The re-pushes of op-1's `updating` and SUCCESS arrive before or after op-2's reports.
    late = [
        sw("hung", "updating", op="op-1"),
        sw_result("hung", "SUCCESS", op="op-1", curVersion="2.0", sourceVersion="1.0"),
        sw("moved", "updating", op="op-1"),
    ]
    on_time = [
        sw("hung", "downloading", op="op-1"),
        sw("hung", "idle", op="op-1"),
        sw("hung", "downloading", op="op-2", sub="s2"),
        sw("moved", "downloading", op="op-1"),
        sw("moved", "idle", op="op-1"),
        sw_result("moved", "SUCCESS", op="op-1", curVersion="2.0", sourceVersion="1.0"),
        sw("moved", "downloading", op="op-2", sub="s2"),
        sw("moved", "idle", op="op-2", sub="s2"),
        sw_result("moved", "SUCCESS", op="op-2", sub="s2", curVersion="3.0", sourceVersion="2.0"),
    ]
    await post_all(client, *(late + on_time if late_first else on_time + late))
    stuck = await get(client, "/v1/devices", track="software", stuck_for="0")
    assert [(d["device_id"], d["software"]["operation_id"]) for d in stuck["items"]] == [
        ("hung", "op-2")
    ]
    of_op1 = await get(client, "/v1/devices", track="software", operation_id="op-1", stuck_for="0")
    assert of_op1["items"] == []
    rollup = await get(client, "/v1/operations/op-1", track="software")
    assert (rollup["states"], rollup["results"]) == ({"idle": 2}, {"SUCCESS": 2, "FAIL": 0})


# 10. Strict fields stay strict.


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (sw_result("d", 1), "swUpgradeResult"),
        (fw("d", 1, "downloading"), "step"),
        (task("t", None), "notify_data.body.status"),
    ],
)
async def test_a_wrong_type_on_a_strict_field_is_a_422_naming_it(
    client: TestClient[Any, Any], body: bytes, field: str
) -> None:
    response = await client.post("/v1/notifications", data=body)
    assert response.status == 422, await response.text()
    details = (await response.json())["error"]["details"]
    assert {d["field"] for d in details} == {field}
