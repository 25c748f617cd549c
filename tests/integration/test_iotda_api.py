"""PlatformApi (tracker/iotda/api.py) against the fake of ListBatchTasks, ShowBatchTask and
StopBatchTask (tests/support/fake_iotda.py), served in the test's own event loop: had the SDK
blocked the loop, the fake could not answer. What comes back is the body byte for byte and the
request line as sent; every failure comes back as the error that says what to do about it."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.support import fake_iotda
from tests.support.fake_iotda import FakeIoTDA
from tracker.iotda.api import (
    Denied,
    Missing,
    PlatformApi,
    Refused,
    Throttled,
    Unavailable,
)
from tracker.iotda.credentials import Credentials

UPGRADE = "softwareUpgrade"
SECRET = "5ecret-sk-that-must-never-show"


def credentials(fake: FakeIoTDA, **changes: Any) -> Credentials:
    given = {"endpoint": fake.endpoint, "project_id": fake.project_id, "ak": fake.ak}
    return Credentials(**(given | {"sk": fake.sk} | changes))


@pytest.fixture
async def fake() -> AsyncIterator[FakeIoTDA]:
    async with FakeIoTDA(sk=SECRET) as running:
        yield running


@pytest.fixture
async def api(fake: FakeIoTDA) -> AsyncIterator[PlatformApi]:
    async with PlatformApi(credentials(fake)) as platform:
        yield platform


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body the fake sends, as bytes on the wire."""
    bodies: list[bytes] = []
    original = fake_iotda._json

    def recording(body: dict[str, Any], status: int, headers: dict[str, str]) -> web.Response:
        response = original(body, status, headers)
        assert isinstance(response.body, bytes)
        bodies.append(response.body)
        return response

    monkeypatch.setattr(fake_iotda, "_json", recording)
    return bodies


async def test_a_listing_is_the_body_as_sent_parsed_and_the_request_line(
    fake: FakeIoTDA, api: PlatformApi, sent: list[bytes]
) -> None:
    tasks = [fake.create_task(2, task_type=UPGRADE, app_id="app-1") for _ in range(3)]

    answer = await api.list_tasks(task_type=UPGRADE, app_id="app-1", limit=2)

    assert answer.raw == sent[-1]
    assert answer.document == orjson.loads(sent[-1])
    assert [task["task_id"] for task in answer.document["batchtasks"]] == [
        tasks[2].task_id,
        tasks[1].task_id,
    ]
    assert answer.request == (
        f"GET /v5/iot/{fake.project_id}/batchtasks?app_id=app-1&limit=2&task_type={UPGRADE}"
    )
    marker = answer.document["page"]["marker"]
    rest = await api.list_tasks(task_type=UPGRADE, app_id="app-1", marker=marker)
    assert [task["task_id"] for task in rest.document["batchtasks"]] == [tasks[0].task_id]
    assert f"marker={marker}" in rest.request
    assert [call.query.get("marker") for call in fake.calls] == [None, marker]


async def test_a_task_s_details_are_read_once_each_a_marker_page_at_a_time(
    fake: FakeIoTDA, api: PlatformApi, sent: list[bytes]
) -> None:
    task = fake.create_task(120)
    task.move("Waitting", "Success", 30)
    seen: list[str] = []
    marker, pages = None, []

    while True:
        answer = await api.show_task(task.task_id, marker=marker)
        assert answer.raw == sent[-1]
        assert answer.document["batchtask"]["task_id"] == task.task_id
        assert answer.document["page"]["count"] == 120
        pages.append(len(answer.document["task_details"]))
        seen += [detail["target"] for detail in answer.document["task_details"]]
        marker = answer.document["page"].get("marker")
        if marker is None:
            break

    assert pages == [50, 50, 20, 0]
    assert sorted(seen) == sorted(task.device(index) for index in range(120))
    assert answer.request.startswith(f"GET /v5/iot/{fake.project_id}/batchtasks/{task.task_id}?")
    assert [call.query["limit"] for call in fake.calls] == ["50"] * 4


async def test_the_detail_status_filter(fake: FakeIoTDA, api: PlatformApi) -> None:
    task = fake.create_task(40)
    task.set(["device-03", "device-17"], "Fail", error=("UPGRADE.0001", "download failed"))

    answer = await api.show_task(task.task_id, detail_status="Fail", limit=10)

    details = answer.document["task_details"]
    assert [(d["target"], d["status"]) for d in details] == [
        ("device-17", "Fail"),
        ("device-03", "Fail"),
    ]
    assert details[0]["error"] == {"error_code": "UPGRADE.0001", "error_msg": "download failed"}
    assert "task_detail_status=Fail" in answer.request
    assert fake.calls[-1].query == {"limit": "10", "task_detail_status": "Fail"}


async def test_a_wrong_secret_key_is_denied_without_the_key_in_any_message(
    fake: FakeIoTDA,
) -> None:
    wrong = "wrong-sk-also-never-shown"
    async with PlatformApi(credentials(fake, sk=wrong)) as api:
        with pytest.raises(Denied) as caught:
            await api.list_tasks(task_type=UPGRADE)

    denied = caught.value
    assert (denied.status, denied.error_code) == (401, "IOTDA.000002")
    assert "Authentication failed." in str(denied)
    assert "\n" not in str(denied)
    shown = f"{denied} {denied!r} {denied.request} {denied.args} {credentials(fake, sk=wrong)!r}"
    assert wrong not in shown
    assert SECRET not in shown
    assert [call.status for call in fake.calls] == [401]


async def test_a_429_is_throttled_with_the_platform_s_code_and_its_retry_after(
    fake: FakeIoTDA, api: PlatformApi
) -> None:
    fake.throttle_next(1)
    with pytest.raises(Throttled) as first:
        await api.list_tasks(task_type=UPGRADE)
    assert first.value.retry_after is None
    assert "APIG.0308" in str(first.value)  # the 429's own body, which the SDK alone loses

    fake.throttle_next(1)
    fake.retry_after = 7
    with pytest.raises(Throttled) as second:
        await api.list_tasks(task_type=UPGRADE)
    assert second.value.retry_after == 7.0

    await api.list_tasks(task_type=UPGRADE)
    assert [call.status for call in fake.calls] == [429, 429, 200]  # never retried by the SDK


async def test_a_server_fault_is_unavailable_and_not_retried(
    fake: FakeIoTDA, api: PlatformApi
) -> None:
    fake.fail_next(1, 503)
    with pytest.raises(Unavailable) as caught:
        await api.list_tasks(task_type=UPGRADE)

    assert caught.value.status == 503
    assert "IOTDA.000001" in str(caught.value)
    assert (await api.list_tasks(task_type=UPGRADE)).document["page"]["count"] == 0
    assert [call.status for call in fake.calls] == [503, 200]


async def test_a_slow_answer_or_no_server_is_unavailable(fake: FakeIoTDA) -> None:
    fake.latency = 0.5
    async with PlatformApi(credentials(fake), timeout=(5.0, 0.2)) as api:
        with pytest.raises(Unavailable, match="Read timed out") as slow:
            await api.list_tasks(task_type=UPGRADE)
    assert slow.value.status is None

    await fake.stop()  # nothing listens on its port any more
    async with PlatformApi(credentials(fake)) as api:
        with pytest.raises(Unavailable) as refused:
            await api.list_tasks(task_type=UPGRADE)
    assert refused.value.status is None


async def test_an_unknown_task_is_missing(api: PlatformApi) -> None:
    with pytest.raises(Missing, match="404"):
        await api.show_task("0123456789abcdef01234567")


async def test_a_limit_above_50_is_refused(api: PlatformApi) -> None:
    with pytest.raises(Refused) as caught:
        await api.show_task("0123456789abcdef01234567", limit=51)

    assert (caught.value.status, caught.value.error_code) == (400, "IOTDA.000017")
    assert caught.value.request is not None
    assert "limit=51" in caught.value.request


async def test_an_instance_endpoint_is_reached_with_derived_signing_and_its_region() -> None:
    async with FakeIoTDA(signing="derived", instance_id="instance-1") as instance:
        task = instance.create_task(2)
        keyed = credentials(instance, instance_id="instance-1", region="cn-north-4")
        async with PlatformApi(keyed) as api:
            answer = await api.show_task(task.task_id)
        assert answer.document["page"]["count"] == 2

        async with PlatformApi(credentials(instance, instance_id="instance-1")) as plain:
            with pytest.raises(Denied):
                await plain.show_task(task.task_id)
        assert instance.calls[-1].refusal == "SDK-HMAC-SHA256 is not accepted at this endpoint"
        other = credentials(instance, instance_id="instance-2", region="cn-north-4")
        async with PlatformApi(other) as elsewhere:
            with pytest.raises(Denied) as forbidden:
                await elsewhere.show_task(task.task_id)
        assert forbidden.value.status == 403


async def test_one_client_s_requests_never_overlap(fake: FakeIoTDA, api: PlatformApi) -> None:
    task = fake.create_task(3)
    fake.latency = 0.2

    await asyncio.gather(*(api.show_task(task.task_id) for _ in range(3)))

    arrivals = [call.at for call in fake.calls]
    assert all(later - earlier >= 0.2 for earlier, later in itertools.pairwise(arrivals))


async def test_close_ends_the_threads_and_later_calls_fail(fake: FakeIoTDA) -> None:
    before = set(threading.enumerate())
    api = PlatformApi(credentials(fake))
    await api.list_tasks(task_type=UPGRADE)
    await api.close()
    await api.close()  # a second close does nothing

    with pytest.raises(RuntimeError, match="closed"):
        await api.list_tasks(task_type=UPGRADE)
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=5)
        assert not thread.is_alive(), thread.name


async def until_status(api: PlatformApi, task_id: str, status: str) -> dict[str, Any]:
    for _ in range(100):
        task: dict[str, Any] = (await api.show_task(task_id)).document["batchtask"]
        if task["status"] == status:
            return task
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} never became {status}")


async def test_a_stopped_task_goes_stopping_then_stopped_with_its_open_subtasks(
    fake: FakeIoTDA, api: PlatformApi, sent: list[bytes]
) -> None:
    task = fake.create_task(10, task_type="firmwareUpgrade")
    task.set_range(0, 2, "Success")
    task.set_range(2, 5, "Processing")
    task.set_range(5, 6, "Fail", error=("UPGRADE.0001", "download failed"))
    task.set_range(6, 7, "FailWaitRetry")  # 7..9 still Waitting
    fake.stop_takes = 0.3

    answer = await api.stop_task(task.task_id)

    assert answer.raw == sent[-1]
    assert answer.document == orjson.loads(sent[-1]) == {"targets": []}
    assert answer.request == f"POST /v5/iot/{fake.project_id}/batchtasks/{task.task_id}/stop"
    call = fake.calls[-1]
    assert (call.method, call.operation, call.status, call.body) == (
        "POST",
        "StopBatchTask",
        200,
        b"{}",
    )
    stopping = (await api.show_task(task.task_id)).document["batchtask"]
    assert (stopping["status"], stopping["task_progress"]["stopped"]) == ("Stopping", 0)
    stopped = await until_status(api, task.task_id, "Stopped")
    assert stopped["task_progress"] == {
        "total": 10,
        "processing": 0,
        "success": 2,
        "fail": 1,
        "waitting": 0,
        "fail_wait_retry": 0,
        "stopped": 7,
        "removed": 0,
    }
    details = (await api.show_task(task.task_id, detail_status="Stopped")).document
    assert sorted(d["target"] for d in details["task_details"]) == [
        f"device-{i}" for i in (2, 3, 4, 6, 7, 8, 9)
    ]


async def test_stopping_some_targets_stops_only_theirs_and_says_which_could_not_be(
    fake: FakeIoTDA, api: PlatformApi
) -> None:
    task = fake.create_task(10)
    task.set_range(0, 4, "Processing")
    task.set("device-9", "Success")

    answer = await api.stop_task(task.task_id, ["device-1", "device-9", "device-5", "other"])

    assert answer.document["targets"] == [
        {"target": "device-1", "status": "success"},
        {
            "target": "device-9",
            "status": "failure",
            "error_code": "IOTDA.014219",
            "error_msg": "The subtask of the target cannot be stopped.",
        },
        {"target": "device-5", "status": "success"},
        {
            "target": "other",
            "status": "failure",
            "error_code": "IOTDA.014219",
            "error_msg": "The subtask of the target cannot be stopped.",
        },
    ]
    assert orjson.loads(fake.calls[-1].body) == {
        "targets": ["device-1", "device-9", "device-5", "other"]
    }
    shown = (await api.show_task(task.task_id)).document["batchtask"]
    assert shown["status"] == "Processing"  # the task goes on for the other devices
    progress = shown["task_progress"]
    assert (progress["stopped"], progress["processing"], progress["waitting"]) == (2, 3, 4)
    assert [task.subtask(f"device-{i}").status for i in (1, 5, 9)] == [
        "Stopped",
        "Stopped",
        "Success",
    ]


@pytest.mark.parametrize("status", ["Success", "Fail", "PartialSuccess", "Stopped", "Stopping"])
async def test_a_finished_or_stopping_task_is_refused(
    fake: FakeIoTDA, api: PlatformApi, status: str
) -> None:
    task = fake.create_task(3, status=status)

    with pytest.raises(Refused) as caught:
        await api.stop_task(task.task_id)

    assert (caught.value.status, caught.value.error_code) == (400, "IOTDA.014126")
    assert caught.value.request == (
        f"POST /v5/iot/{fake.project_id}/batchtasks/{task.task_id}/stop"
    )
    assert task.status == status
    assert task.progress()["waitting"] == 3


async def test_a_task_stopped_twice_is_refused_the_second_time(
    fake: FakeIoTDA, api: PlatformApi
) -> None:
    task = fake.create_task(3)
    fake.stop_takes = 5.0  # still Stopping when asked again

    await api.stop_task(task.task_id)
    with pytest.raises(Refused, match=r"IOTDA\.014126"):
        await api.stop_task(task.task_id)
    assert [call.status for call in fake.calls] == [200, 400]


async def test_a_task_that_is_not_an_upgrade_or_too_many_targets_is_refused(
    fake: FakeIoTDA, api: PlatformApi
) -> None:
    commands = fake.create_task(3, task_type="createCommands")
    with pytest.raises(Refused) as wrong_type:
        await api.stop_task(commands.task_id)
    assert wrong_type.value.error_code == "IOTDA.000006"

    upgrade = fake.create_task(200)
    with pytest.raises(Refused) as too_many:
        await api.stop_task(upgrade.task_id, [upgrade.device(i) for i in range(101)])
    assert too_many.value.error_code == "IOTDA.000006"
    assert upgrade.progress()["stopped"] == 0


async def test_stopping_an_unknown_task_is_missing(fake: FakeIoTDA, api: PlatformApi) -> None:
    with pytest.raises(Missing, match=r"IOTDA\.000404"):
        await api.stop_task("0123456789abcdef01234567")
    assert fake.calls[-1].operation == "StopBatchTask"


async def test_stopping_with_a_wrong_secret_key_is_denied_and_stops_nothing(
    fake: FakeIoTDA,
) -> None:
    task = fake.create_task(3)
    async with PlatformApi(credentials(fake, sk="wrong-sk")) as api:
        with pytest.raises(Denied) as caught:
            await api.stop_task(task.task_id)

    assert (caught.value.status, caught.value.error_code) == (401, "IOTDA.000002")
    assert (task.status, task.progress()["stopped"]) == ("Processing", 0)


@pytest.mark.parametrize(
    "endpoint",
    [
        "ftp://iotda.example.com",
        "iotda.cn-north-4.myhuaweicloud.com",
        "https://",
        "https://user:pass@iotda.example.com",
        "https://iotda.example.com/v5",
    ],
)
def test_an_endpoint_that_is_not_plain_http_or_https_is_refused(endpoint: str) -> None:
    keys = Credentials(endpoint=endpoint, project_id="p", ak="ak", sk=SECRET)
    with pytest.raises(ValueError, match="endpoint") as caught:
        PlatformApi(keys)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(keys)
