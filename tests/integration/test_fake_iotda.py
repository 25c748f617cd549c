"""Huawei's own IoTDA SDK against the fake of ListBatchTasks, ShowBatchTask and StopBatchTask
(tests/support/fake_iotda.py): the pages, filters and limits it reads, the signatures it
accepts and refuses, and how 401, 429 and 5xx reach a caller of the SDK, sync and async."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import tracemalloc
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from huaweicloudsdkcore import sdk_request
from huaweicloudsdkcore.auth import credentials
from huaweicloudsdkcore.exceptions import exceptions as errors
from huaweicloudsdkcore.http import http_config
from huaweicloudsdkcore.region import region
from huaweicloudsdkcore.signer import signer
from huaweicloudsdkiotda import v5 as iotda
from hypothesis import given, settings
from hypothesis import strategies as st
from requests import exceptions as requests_errors  # the SDK's HTTP client

from tests.support.fake_iotda import FakeIoTDA
from tests.support.iotda_tasks import SUBTASK_STATUSES, Subtask, Subtasks

Connect = Callable[..., Any]
UPGRADE = "softwareUpgrade"


@pytest.fixture
def fake() -> Iterator[FakeIoTDA]:
    with FakeIoTDA().in_thread() as running:
        yield running


@pytest.fixture
def connect() -> Iterator[Connect]:
    """SDK clients as the reconciler would build them, closed after the test."""
    clients: list[Any] = []

    def build(
        target: FakeIoTDA,
        *,
        sk: str | None = None,
        project_id: str | None = None,
        derived: bool = False,
        retry_times: int = 0,
        timeout: tuple[float, float] = (60, 120),  # the SDK's default (connect, read)
        asynchronous: bool = False,
    ) -> Any:
        keys = credentials.BasicCredentials(
            target.ak, sk or target.sk, project_id or target.project_id
        )
        config = http_config.HttpConfig.get_default_config()
        config.retry_times = retry_times  # 0, the default: the SDK retries a 429 0 times
        config.timeout = timeout
        kind = iotda.IoTDAAsyncClient if asynchronous else iotda.IoTDAClient
        builder = kind.new_builder().with_credentials(keys).with_http_config(config)
        if derived:  # how an instance's own endpoint is reached: V11-HMAC-SHA256, needs a region
            keys.with_derived_predicate(
                credentials.DerivedCredentials.get_default_derived_predicate()
            )
            builder = builder.with_region(region.Region("cn-north-4", target.endpoint))
        else:
            builder = builder.with_endpoint(target.endpoint)  # http:// is kept as given
        client = builder.build()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


def listing(client: Any, **query: Any) -> Any:
    return client.list_batch_tasks(iotda.ListBatchTasksRequest(**query))


def showing(client: Any, task_id: str, **query: Any) -> Any:
    return client.show_batch_task(iotda.ShowBatchTaskRequest(task_id=task_id, **query))


def stopping(client: Any, task_id: str, targets: list[str] | None = None) -> Any:
    body = iotda.BatchTargets(targets=targets)
    return client.stop_batch_task(iotda.StopBatchTaskRequest(task_id=task_id, body=body))


def refused(call: Callable[[], Any], kind: Any = None) -> Any:
    with pytest.raises(kind or errors.ClientRequestException) as caught:
        call()
    return caught.value


def test_upgrade_tasks_are_listed_newest_first_a_marker_page_at_a_time(
    fake: FakeIoTDA, connect: Connect
) -> None:
    made = [fake.create_task(3, task_type=UPGRADE) for _ in range(7)]
    fake.create_task(3, task_type="firmwareUpgrade")
    client, seen, marker, pages = connect(fake), [], None, 0

    while True:
        response = listing(client, task_type=UPGRADE, limit=3, marker=marker)
        pages += 1
        if not response.batchtasks:
            break
        assert response.page.count == 7  # all that match, not what is left after the marker
        seen += [task.task_id for task in response.batchtasks]
        assert response.page.marker == seen[-1]
        marker = response.page.marker

    assert seen == [task.task_id for task in reversed(made)]
    assert pages == 4  # 3 + 3 + 1, then an empty page without a marker
    assert response.page.marker is None
    first = listing(client, task_type=UPGRADE, limit=1).batchtasks[0]
    assert (first.task_type, first.status, first.task_progress.waitting) == (
        UPGRADE,
        "Processing",
        3,
    )
    assert len(first.create_time) == len("20151212T121212Z")


def test_listing_filters_by_app_and_status_and_offset_skips_after_the_marker(
    fake: FakeIoTDA, connect: Connect
) -> None:
    ours = [fake.create_task(2, app_id="app-1") for _ in range(4)]
    fake.create_task(2, app_id="app-2")
    ours[1].status = "Success"
    client = connect(fake)

    assert listing(client, task_type=UPGRADE, app_id="app-1").page.count == 4
    done = listing(client, task_type=UPGRADE, app_id="app-1", status="Success").batchtasks
    assert [task.task_id for task in done] == [ours[1].task_id]
    skipped = listing(client, task_type=UPGRADE, app_id="app-1", offset=1, marker=ours[3].task_id)
    assert [task.task_id for task in skipped.batchtasks] == [ours[1].task_id, ours[0].task_id]


def test_a_task_s_devices_come_a_marker_page_at_a_time_newest_first(
    fake: FakeIoTDA, connect: Connect
) -> None:
    task = fake.create_task([f"meter-{n}" for n in range(25)])
    task.move("Waitting", "Success", 5, output='{"version": "2.0"}')
    client, seen, marker = connect(fake), [], None

    for expected in (10, 10, 5, 0):
        response = showing(client, task.task_id, limit=10, marker=marker)
        assert len(response.task_details) == expected
        assert response.page.count == 25
        seen += [detail.target for detail in response.task_details]
        marker = response.page.marker

    assert seen == [f"meter-{n}" for n in reversed(range(25))]  # the last target is the newest
    assert marker is None
    body = json.loads(showing(client, task.task_id, limit=50).raw_content)
    assert body["batchtask"]["task_progress"] == {
        "total": 25, "processing": 0, "success": 5, "fail": 0, "waitting": 20,
        "fail_wait_retry": 0, "stopped": 0, "removed": 0,
    }  # fmt: skip
    assert body["task_details"][-1] == {
        "target": "meter-0", "status": "Success", "output": '{"version": "2.0"}'
    }  # fmt: skip
    assert set(body) == {"batchtask", "task_details", "page"}  # ShowBatchTaskResponse's fields


def test_the_status_filter_sees_devices_move_between_polls(
    fake: FakeIoTDA, connect: Connect
) -> None:
    task = fake.create_task(40)
    task.set(["device-03", "device-17"], "Fail", error=("UPGRADE.0001", "download failed"))
    task.set("device-30", "FailWaitRetry", error=("UPGRADE.0002", "device offline"))
    client = connect(fake)

    failed = showing(client, task.task_id, task_detail_status="Fail", limit=50)
    assert [(d.target, d.error.error_code, d.error.error_msg) for d in failed.task_details] == [
        ("device-17", "UPGRADE.0001", "download failed"),
        ("device-03", "UPGRADE.0001", "download failed"),
    ]
    assert failed.page.count == 2
    assert failed.batchtask.task_progress.fail == 2  # the task's counters are all of it

    task.set("device-17", "Success")  # retried by the platform, between two polls
    task.move("FailWaitRetry", "Processing")
    still = showing(client, task.task_id, task_detail_status="Fail").task_details
    assert [detail.target for detail in still] == ["device-03"]
    one = showing(client, task.task_id, target="device-30").task_details
    assert [(d.target, d.status, d.error) for d in one] == [("device-30", "Processing", None)]
    assert (
        showing(client, task.task_id, target="device-30", task_detail_status="Fail").page.count == 0
    )


def test_a_million_device_task_costs_little_memory_and_a_page_is_quick(
    fake: FakeIoTDA, connect: Connect
) -> None:
    tracemalloc.start()
    task = fake.create_task(1_000_000)
    task.move("Waitting", "Processing", 600_000)
    task.move("Processing", "Success", 400_000)
    task.set(["device-000007", "device-654321", "device-999999"], "Fail", error=("E", "m"))
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held < 64 * 1024
    client = connect(fake)

    first = showing(client, task.task_id, limit=50)
    assert first.batchtask.task_progress.to_dict() == {
        "total": 1_000_000, "processing": 200_000, "success": 399_999, "fail": 3,
        "waitting": 399_998, "fail_wait_retry": 0, "stopped": 0, "removed": 0,
    }  # fmt: skip
    assert [d.target for d in first.task_details[:2]] == ["device-999999", "device-999998"]
    fails = showing(client, task.task_id, task_detail_status="Fail", limit=50).task_details
    assert [d.target for d in fails] == ["device-999999", "device-654321", "device-000007"]

    took, marker = [], first.page.marker
    for _ in range(40):  # a sweep's requests: the next 50 after the marker
        start = time.perf_counter()
        page = showing(client, task.task_id, limit=50, marker=marker)
        took.append(time.perf_counter() - start)
        marker = page.page.marker
    assert page.task_details[-1].target == f"device-{999_999 - 41 * 50 + 1:06d}"
    print(f"\nShowBatchTask, 50 of 1,000,000 devices, against the fake: median "
          f"{statistics.median(took) * 1000:.1f} ms, max {max(took) * 1000:.1f} ms")  # fmt: skip
    assert statistics.median(took) < 0.5


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 30), st.sampled_from(SUBTASK_STATUSES)),
        max_size=12,
    ),
    st.integers(0, 30),
    st.sampled_from((None, *SUBTASK_STATUSES)),
)
def test_subtask_runs_agree_with_a_plain_list(
    changes: list[tuple[int, int, str]], position: int, status: str | None
) -> None:
    runs, plain = Subtasks(30, Subtask()), [Subtask()] * 30
    for lo, hi, new in changes:
        runs.assign(lo, hi, Subtask(new))
        plain[lo:hi] = [Subtask(new)] * len(plain[lo:hi])

    assert [runs[i] for i in range(30)] == plain
    assert +runs.counts == +Counter(each.status for each in plain)
    expected = [i for i in reversed(range(position)) if status in (None, plain[i].status)]
    assert list(runs.below(position, status)) == expected


def test_a_wrong_secret_key_or_unknown_project_is_refused_401(
    fake: FakeIoTDA, connect: Connect
) -> None:
    fake.create_task(1)
    wrong = refused(lambda: listing(connect(fake, sk="not-the-sk"), task_type=UPGRADE))

    assert (wrong.status_code, wrong.error_code) == (401, "IOTDA.000002")
    assert wrong.error_msg == "Authentication failed."
    assert wrong.request_id  # from the X-Request-Id header
    assert fake.calls[-1].refusal == "signature mismatch"
    other = refused(lambda: listing(connect(fake, project_id="another"), task_type=UPGRADE))
    assert (other.status_code, fake.calls[-1].status) == (401, 401)
    assert listing(connect(fake), task_type=UPGRADE).page.count == 1


def test_an_sdk_date_more_than_15_minutes_off_is_refused(fake: FakeIoTDA, connect: Connect) -> None:
    client = connect(fake)
    fake.clock_skew = timedelta(minutes=14)
    assert listing(client, task_type=UPGRADE).page.count == 0

    fake.clock_skew = timedelta(minutes=-16)
    assert refused(lambda: listing(client, task_type=UPGRADE)).status_code == 401
    assert "more than 15 minutes" in (fake.calls[-1].refusal or "")


def test_an_unsigned_or_altered_request_is_refused(fake: FakeIoTDA) -> None:
    path = f"/v5/iot/{fake.project_id}/batchtasks"
    signed = sdk_request.SdkRequest(
        method="GET",
        schema="http",
        host=f"127.0.0.1:{fake.port}",
        resource_path=path,
        query_params=[("task_type", UPGRADE), ("limit", 10)],
        header_params={"X-Project-Id": fake.project_id, "Content-Type": "application/json"},
        body="",
    )
    signer.Signer(credentials.BasicCredentials(fake.ak, fake.sk)).sign(signed)

    def send(query: str, headers: dict[str, str]) -> int:
        request = urllib.request.Request(f"{fake.endpoint}{path}?{query}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert send("limit=10&task_type=softwareUpgrade", signed.header_params) == 200
    assert send("limit=50&task_type=softwareUpgrade", signed.header_params) == 401
    assert fake.calls[-1].refusal == "signature mismatch"
    assert send("limit=10&task_type=softwareUpgrade", {"X-Project-Id": fake.project_id}) == 401
    assert fake.calls[-1].refusal == "no Authorization header of a known form"


def test_five_failed_signatures_in_a_row_lock_the_ak(fake: FakeIoTDA, connect: Connect) -> None:
    for _ in range(5):
        refused(lambda: listing(connect(fake, sk="wrong"), task_type=UPGRADE))

    locked = refused(lambda: listing(connect(fake), task_type=UPGRADE))
    assert (locked.status_code, locked.error_code) == (401, "APIG.0301")
    fake.unlock()
    assert listing(connect(fake), task_type=UPGRADE).page.count == 0


def test_an_instance_endpoint_takes_only_derived_signatures(connect: Connect) -> None:
    with FakeIoTDA(signing="derived").in_thread() as instance:
        task = instance.create_task(2)
        assert showing(connect(instance, derived=True), task.task_id).page.count == 2
        assert instance.calls[-1].status == 200

        refused(lambda: showing(connect(instance), task.task_id))
        assert instance.calls[-1].refusal == "SDK-HMAC-SHA256 is not accepted at this endpoint"
        refused(lambda: showing(connect(instance, derived=True, sk="wrong"), task.task_id))
        assert instance.calls[-1].refusal == "signature mismatch"


def test_the_instance_id_header_is_honoured(connect: Connect) -> None:
    with FakeIoTDA(instance_id="instance-1").in_thread() as instance:
        client = connect(instance)
        assert listing(client, task_type=UPGRADE, instance_id="instance-1").page.count == 0

        assert refused(lambda: listing(client, task_type=UPGRADE)).status_code == 403
        other = refused(lambda: listing(client, task_type=UPGRADE, instance_id="instance-2"))
        assert other.status_code == 403


def test_a_429_reaches_the_sync_caller_as_a_client_request_exception_without_its_body(
    fake: FakeIoTDA, connect: Connect
) -> None:
    fake.throttle_next(1)
    throttled = refused(lambda: listing(connect(fake), task_type=UPGRADE))

    # The SDK's urllib3 Retry(status_forcelist=[429]) takes the 429 before the SDK reads it:
    # the platform's APIG.0308 body is lost, error_code is the string "429", no request id.
    assert (throttled.status_code, throttled.error_code, throttled.request_id) == (429, "429", "")
    assert "too many 429 error responses" in throttled.error_msg
    assert [call.status for call in fake.calls] == [429]

    fake.throttle_next(3)
    again = refused(lambda: listing(connect(fake, retry_times=2), task_type=UPGRADE))
    assert again.status_code == 429
    assert [call.status for call in fake.calls[1:]] == [429, 429, 429]  # retried at once, unseen


def test_a_429_reaches_the_async_caller_as_a_requests_retry_error(
    fake: FakeIoTDA, connect: Connect
) -> None:
    fake.throttle_next(1)
    future = connect(fake, asynchronous=True).list_batch_tasks_async(
        iotda.ListBatchTasksRequest(task_type=UPGRADE)
    )

    error = refused(future.result, requests_errors.RetryError)
    assert not isinstance(error, errors.SdkException)  # the async path does not translate it


def test_the_sdk_waits_out_a_retry_after_when_it_retries(fake: FakeIoTDA, connect: Connect) -> None:
    fake.throttle_next(1)
    fake.retry_after = 1
    start = time.monotonic()

    assert listing(connect(fake, retry_times=1), task_type=UPGRADE).page.count == 0
    assert time.monotonic() - start >= 0.9  # slept in the caller's thread, inside the SDK
    assert [call.status for call in fake.calls] == [429, 200]


def test_requests_above_the_rate_are_throttled(fake: FakeIoTDA, connect: Connect) -> None:
    fake.limit_rate(5, per=10.0)  # a long window: a busy machine cannot spread 8 calls past it
    client, statuses = connect(fake), []
    for _ in range(8):
        try:
            listing(client, task_type=UPGRADE)
            statuses.append(200)
        except errors.ClientRequestException as error:
            statuses.append(error.status_code)

    assert statuses == [200] * 5 + [429] * 3
    assert fake.peak(per=10.0, status=200) == 5
    assert fake.peak(per=10.0) == 8


def test_server_faults_reach_the_caller_as_server_response_exceptions(
    fake: FakeIoTDA, connect: Connect
) -> None:
    client = connect(fake)
    fake.fail_next(2, status=503)

    for _ in range(2):
        fault = refused(lambda: listing(client, task_type=UPGRADE), errors.ServerResponseException)
        assert (fault.status_code, fault.error_code) == (503, "IOTDA.000001")
        assert fault.error_msg == "Internal server error."
    assert listing(client, task_type=UPGRADE).page.count == 0


def test_an_answer_slower_than_the_read_timeout_is_a_connection_exception(
    fake: FakeIoTDA, connect: Connect
) -> None:
    fake.latency = 0.5
    for asynchronous in (False, True):
        client = connect(fake, timeout=(5, 0.2), asynchronous=asynchronous)
        call = (
            client.list_batch_tasks_async(iotda.ListBatchTasksRequest(task_type=UPGRADE)).result
            if asynchronous
            else lambda: listing(client, task_type=UPGRADE)  # noqa: B023 - called at once
        )
        slow = refused(call, errors.ConnectionException)  # urllib3 wraps the read timeout
        assert "Read timed out" in slow.error_msg


@pytest.mark.parametrize(
    ("query", "error_code"),
    [
        ({"limit": 51}, "IOTDA.000017"),
        ({"limit": 0}, "IOTDA.000017"),
        ({"offset": 501}, "IOTDA.000006"),
        ({"marker": "not-a-marker"}, "IOTDA.000006"),
        ({"status": "Done"}, "IOTDA.000006"),
        ({"task_type": None}, "IOTDA.000006"),  # required
    ],
)
def test_the_documented_limits_are_enforced(
    fake: FakeIoTDA, connect: Connect, query: dict[str, Any], error_code: str
) -> None:
    bad = refused(lambda: listing(connect(fake), **{"task_type": UPGRADE} | query))
    assert (bad.status_code, bad.error_code) == (400, error_code)
    task = fake.create_task(1)
    assert listing(connect(fake), task_type=UPGRADE, limit=50, offset=500).page.count == 1
    assert showing(connect(fake), task.task_id, limit=50).page.count == 1


def test_an_unknown_task_is_404(fake: FakeIoTDA, connect: Connect) -> None:
    missing = refused(lambda: showing(connect(fake), "0123456789abcdef01234567"))
    assert missing.status_code == 404
    assert refused(lambda: showing(connect(fake), "NOT-HEX")).status_code == 400


def test_the_log_holds_each_request_and_latency_delays_the_answer(
    fake: FakeIoTDA, connect: Connect
) -> None:
    task = fake.create_task(3)
    fake.latency = 0.3
    start = time.monotonic()

    showing(connect(fake), task.task_id, limit=2, task_detail_status="Waitting")

    assert time.monotonic() - start >= 0.3
    (call,) = fake.calls
    assert (call.method, call.path) == (
        "GET",
        f"/v5/iot/{fake.project_id}/batchtasks/{task.task_id}",
    )
    assert call.query == {"limit": "2", "task_detail_status": "Waitting"}
    assert (call.operation, call.status, call.refusal) == ("ShowBatchTask", 200, None)
    assert start <= call.at <= time.monotonic()


async def test_from_an_aiohttp_loop_the_sdk_is_awaited_through_threads(connect: Connect) -> None:
    async with FakeIoTDA() as fake:  # in this test's loop: every SDK call must leave it
        task = fake.create_task(120)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        client = connect(fake, asynchronous=True)
        futures = [
            client.show_batch_task_async(
                iotda.ShowBatchTaskRequest(task_id=task.task_id, limit=50, offset=offset)
            )
            for offset in (0, 50, 100)
        ]  # concurrent.futures underneath: .result() blocks, so it goes to a thread
        pages = await asyncio.gather(*(asyncio.to_thread(future.result) for future in futures))
        sync = connect(fake)
        listed = await asyncio.to_thread(listing, sync, task_type=UPGRADE)
        ticker.cancel()

        assert [len(page.task_details) for page in pages] == [50, 50, 20]
        assert listed.batchtasks[0].task_id == task.task_id
        assert ticks > 0


def test_a_stopped_task_reads_stopping_then_stopped_through_the_sdk(
    fake: FakeIoTDA, connect: Connect
) -> None:
    task = fake.create_task(6, task_type="firmwareUpgrade")
    task.set_range(0, 2, "Processing")
    task.set("device-5", "Success")
    fake.stop_takes = 0.3
    client = connect(fake)

    response = stopping(client, task.task_id)

    assert response.status_code == 200
    assert response.targets == []
    shown = showing(client, task.task_id)
    assert (shown.batchtask.status, shown.batchtask.task_progress.stopped) == ("Stopping", 0)
    time.sleep(0.5)
    shown = showing(client, task.task_id, task_detail_status="Stopped")
    assert shown.batchtask.status == "Stopped"
    progress = shown.batchtask.task_progress
    assert (progress.stopped, progress.success, progress.processing, progress.waitting) == (
        5,
        1,
        0,
        0,
    )
    assert shown.page.count == 5
    assert sorted(detail.target for detail in shown.task_details) == [
        f"device-{i}" for i in range(5)
    ]
    (call, *_) = [call for call in fake.calls if call.operation == "StopBatchTask"]
    assert (call.method, call.path, call.status, call.body) == (
        "POST",
        f"/v5/iot/{fake.project_id}/batchtasks/{task.task_id}/stop",
        200,
        b"{}",
    )


def test_stopping_listed_targets_answers_each_one(fake: FakeIoTDA, connect: Connect) -> None:
    task = fake.create_task(4)
    task.set("device-3", "Fail", error=("UPGRADE.0001", "download failed"))
    client = connect(fake)

    response = stopping(client, task.task_id, ["device-0", "device-3"])

    results = [(r.target, r.status, r.error_code) for r in response.targets]
    assert results == [("device-0", "success", None), ("device-3", "failure", "IOTDA.014219")]
    assert task.status == "Processing"
    assert [task.subtask(f"device-{i}").status for i in range(4)] == [
        "Stopped",
        "Waitting",
        "Waitting",
        "Fail",
    ]
    assert json.loads(fake.calls[-1].body) == {"targets": ["device-0", "device-3"]}


def test_stopping_is_refused_when_finished_unknown_malformed_or_unsigned(
    fake: FakeIoTDA, connect: Connect
) -> None:
    client = connect(fake)
    done = fake.create_task(2, status="PartialSuccess")
    finished = refused(lambda: stopping(client, done.task_id))
    assert (finished.status_code, finished.error_code) == (400, "IOTDA.014126")
    missing = refused(lambda: stopping(client, "0123456789abcdef01234567"))
    assert (missing.status_code, missing.error_code) == (404, "IOTDA.000404")
    task = fake.create_task(2)
    assert refused(lambda: stopping(client, task.task_id, [])).error_code == "IOTDA.000006"
    unsigned = refused(lambda: stopping(connect(fake, sk="wrong"), task.task_id))
    assert (unsigned.status_code, unsigned.error_code) == (401, "IOTDA.000002")
    assert task.progress()["stopped"] == 0
    assert [call.status for call in fake.calls] == [400, 404, 400, 401]
    assert {call.operation for call in fake.calls} == {"StopBatchTask"}


def test_stop_is_a_post_and_show_a_get(fake: FakeIoTDA) -> None:
    task = fake.create_task(2)
    show = f"/v5/iot/{fake.project_id}/batchtasks/{task.task_id}"

    def send(method: str, path: str) -> int:
        signed = sdk_request.SdkRequest(
            method=method,
            schema="http",
            host=f"127.0.0.1:{fake.port}",
            resource_path=path,
            query_params=[],
            header_params={"X-Project-Id": fake.project_id, "Content-Type": "application/json"},
            body="{}" if method == "POST" else "",
        )
        signer.Signer(credentials.BasicCredentials(fake.ak, fake.sk)).sign(signed)
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(
            f"{fake.endpoint}{path}", data=data, headers=signed.header_params, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    assert (send("GET", f"{show}/stop"), send("POST", show)) == (404, 404)
    assert [call.operation for call in fake.calls] == ["StopBatchTask", "ShowBatchTask"]
    assert task.status == "Processing"
    assert send("POST", f"{show}/stop") == 200
    assert task.status == "Stopped"
