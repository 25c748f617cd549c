"""A fake of the IoTDA endpoints the reconciler reads and the guards call, on a real loopback port,
for Huawei's own SDK to talk to (huaweicloudsdkiotda 3.1.219; the paths, query names and JSON
fields below are its `_list_batch_tasks_http_info`, `_show_batch_task_http_info`,
`_stop_batch_task_http_info` and `v5/model/*`):

- `GET /v5/iot/{project_id}/batchtasks?task_type=&app_id=&status=&limit=&marker=&offset=`
  (ListBatchTasks) → `{"batchtasks": [Task…], "page": {"count", "marker"}}`
- `GET /v5/iot/{project_id}/batchtasks/{task_id}?task_detail_status=&target=&limit=&marker=&offset=`
  (ShowBatchTask) → `{"batchtask": Task, "task_details": [TaskDetail…], "page": {…}}`
- `POST /v5/iot/{project_id}/batchtasks/{task_id}/stop` with `{}` or `{"targets": [device ids]}`
  (StopBatchTask) → `{"targets": [BatchTargetResult…]}`. `{}` moves the task to Stopping, then
  (at once, or `stop_takes` seconds later) to Stopped with its Processing, Waitting and
  FailWaitRetry subtasks; listed targets are stopped at once, and the task goes on. A task
  finished or Stopping is refused (400), as is one that is not an upgrade.

Each request goes through what the platform puts in front of it, in its order: the AK/SK
signature (tests/support/aksk.py; 401), the project and `Instance-Id` (the SDK's header name,
not X-Instance-Id), flow control (429), scripted server faults (5xx), the documented limits
(`limit` 1..50, `offset` 0..500, 24-hex `marker`; 400), then the answer (200, or 404). Every
request is logged (`calls`) with its time, status and body, so a test can hold a client to a
budget.

    async with FakeIoTDA() as iotda:               # in the test's own event loop
        task = iotda.create_task(1_000_000)         # generated devices, a few hundred bytes
        task.move("Waitting", "Processing", 5000)   # between two polls
        iotda.throttle_next(3)                      # then 429, 429, 429
    with FakeIoTDA().in_thread() as iotda: ...      # for a synchronous test or client

Error bodies are IoTDA's `{"error_code", "error_msg"}`; where each code comes from is noted in
tests/support/iotda_api.py's `ERRORS`. Set `signing="derived"` to be an instance's own endpoint
(V11-HMAC-SHA256 only).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Self

from aiohttp import web

from tests.support import aksk
from tests.support.iotda_api import Reply, list_batch_tasks, show_batch_task, stop_batch_task
from tests.support.iotda_tasks import BatchTask, Platform

_LIST = re.compile(r"/v5/iot/(?P<project>[^/]+)/batchtasks")
_SHOW = re.compile(r"/v5/iot/(?P<project>[^/]+)/batchtasks/(?P<task>[^/]+)")
_STOP = re.compile(r"/v5/iot/(?P<project>[^/]+)/batchtasks/(?P<task>[^/]+)/stop")
_ROUTES = (  # (pattern, method, operation), tried in order
    (_STOP, "POST", "StopBatchTask"),
    (_SHOW, "GET", "ShowBatchTask"),
    (_LIST, "GET", "ListBatchTasks"),
)
_LOCK_AFTER, _LOCK_FOR = 5, 300.0  # APIG: five failed AK/SK checks in a row lock the AK 5 min


@dataclass(frozen=True)
class Call:
    """One request as it arrived, and what it got."""

    method: str
    path: str
    query: dict[str, str]
    at: float  # time.monotonic() on arrival
    status: int
    operation: str | None  # "ListBatchTasks", "ShowBatchTask", "StopBatchTask", or None
    refusal: str | None = None  # why a 4xx/5xx, in the fake's words
    body: bytes = b""  # the request's body, as it arrived


class FakeIoTDA:
    def __init__(
        self,
        *,
        ak: str = "fake-ak",
        sk: str = "fake-sk",
        project_id: str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        instance_id: str | None = None,
        signing: Literal["standard", "derived", "either"] = "either",
    ) -> None:
        self.ak, self.sk, self.project_id, self.instance_id = ak, sk, project_id, instance_id
        self.algorithms = {
            "standard": (aksk.STANDARD,),
            "derived": (aksk.DERIVED,),
            "either": (aksk.STANDARD, aksk.DERIVED),
        }[signing]
        self.platform = Platform()
        self.calls: list[Call] = []
        self.latency = 0.0  # seconds added to every answer
        self.clock_skew = timedelta(0)  # the platform's clock minus ours, for X-Sdk-Date
        self.retry_after: int | None = None  # a Retry-After header on 429s, if set
        self.stop_takes = 0.0  # seconds a stopped task stays Stopping before it is Stopped
        self._throttle_next = 0
        self._fail_next: list[int] = []
        self._rate: tuple[int, float] | None = None
        self._admitted: deque[float] = deque()
        self._failures, self._locked_until = 0, 0.0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- what a test scripts -------------------------------------------------------------

    def create_task(self, targets: int | list[str], **options: Any) -> BatchTask:
        """See Platform.create_task: a list of device ids, or a number of generated ones."""
        return self.platform.create_task(targets, **options)

    @property
    def tasks(self) -> dict[str, BatchTask]:
        return self.platform.tasks

    def throttle_next(self, count: int) -> None:
        """Answer the next `count` authenticated requests 429."""
        self._throttle_next = count

    def limit_rate(self, requests: int | None, per: float = 1.0) -> None:
        """Answer 429 to a request when `requests` were already admitted in the last `per`
        seconds (a sliding window); None lifts the limit."""
        self._rate = None if requests is None else (requests, per)
        self._admitted.clear()

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` admitted requests with this 5xx."""
        self._fail_next = [status] * count

    def unlock(self) -> None:
        self._failures, self._locked_until = 0, 0.0

    def peak(self, per: float = 1.0, status: int | None = None) -> int:
        """The most requests (of one status, or any) that arrived within any `per` seconds."""
        times = [call.at for call in self.calls if status is None or call.status == status]
        best, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= per:
                start += 1
            best = max(best, end - start + 1)
        return best

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def in_thread(self) -> Iterator[Self]:
        """Serve from an event loop of its own, for synchronous tests and clients (the SDK's
        sync client blocks its caller: in the server's own loop it would wait forever)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-iotda", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=10)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    # -- answering -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        at, body = time.monotonic(), await request.read()
        path = request.rel_url.raw_path
        query = dict(request.rel_url.query)
        route, method, operation = next(
            ((found, method, name) for pattern, method, name in _ROUTES
             if (found := pattern.fullmatch(path))),
            (None, None, None),
        )  # fmt: skip
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            self._admit(request, body, route if request.method == method else None, at)
            assert route is not None  # _admit answers 404 to any other path or method
            with self.platform.lock:
                answer = self._answer(operation, route, query, body)
        except Reply as reply:
            self._log(request, query, at, reply.status, operation, reply.detail, body)
            headers = {"X-Request-Id": uuid.uuid4().hex}
            if reply.status == 429 and self.retry_after is not None:
                headers["Retry-After"] = str(self.retry_after)
            return _json(reply.body, reply.status, headers)
        self._log(request, query, at, 200, operation, None, body)
        return _json(answer, 200, {"X-Request-Id": uuid.uuid4().hex})

    def _answer(
        self, operation: str | None, route: re.Match[str], query: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        if operation == "ListBatchTasks":
            return list_batch_tasks(self.platform, query)
        if operation == "ShowBatchTask":
            return show_batch_task(self.platform, route["task"], query)
        answer, stopping = stop_batch_task(self.platform, route["task"], body)
        if stopping is not None and self.stop_takes > 0:
            asyncio.get_running_loop().call_later(self.stop_takes, stopping.stop)
        elif stopping is not None:
            stopping.stop()
        return answer

    def _admit(
        self, request: web.Request, body: bytes, route: re.Match[str] | None, at: float
    ) -> None:
        self._authenticate(request, body, at)
        if route is None:
            raise Reply("no_route", f"no {request.method} {request.rel_url.raw_path}")
        projects = {route["project"], request.headers.get("X-Project-Id")}
        if projects != {self.project_id}:
            raise Reply("unauthorized", f"project(s) {projects} are not the AK's")
        if self.instance_id is not None and request.headers.get("Instance-Id") != self.instance_id:
            raise Reply("instance", f"Instance-Id is not {self.instance_id}")
        self._flow_control(at)
        if self._fail_next:
            raise Reply.fault(self._fail_next.pop(0))

    def _authenticate(self, request: web.Request, body: bytes, at: float) -> None:
        if at < self._locked_until:
            raise Reply("locked", "AK locked after repeated failures")
        try:
            aksk.verify(
                method=request.method,
                raw_path=request.rel_url.raw_path,
                raw_query=request.rel_url.raw_query_string,
                headers=request.headers,
                body=body,
                secrets={self.ak: self.sk},
                now=datetime.now(UTC) + self.clock_skew,
                algorithms=self.algorithms,
            )
        except aksk.Refused as refused:
            self._failures += 1
            if self._failures >= _LOCK_AFTER:
                self._locked_until = at + _LOCK_FOR
            raise Reply("unauthorized", str(refused)) from None
        self._failures = 0

    def _flow_control(self, at: float) -> None:
        if self._throttle_next > 0:
            self._throttle_next -= 1
            raise Reply("throttled", "scripted 429", limit=self._rate[0] if self._rate else 1)
        if self._rate is not None:
            limit, per = self._rate
            while self._admitted and at - self._admitted[0] >= per:
                self._admitted.popleft()
            if len(self._admitted) >= limit:
                raise Reply("throttled", f"over {limit} per {per} s", limit=limit)
            self._admitted.append(at)

    def _log(
        self,
        request: web.Request,
        query: dict[str, str],
        at: float,
        status: int,
        operation: str | None,
        refusal: str | None,
        body: bytes,
    ) -> None:
        path = request.rel_url.path
        call = Call(request.method, path, query, at, status, operation, refusal, body)
        self.calls.append(call)


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> web.Response:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return web.Response(text=text, status=status, headers=headers, content_type="application/json")


async def _demo(devices: int, step: float) -> None:
    """`python -m tests.support.fake_iotda`: one firmware upgrade task whose devices move along
    every `step` seconds (a tenth at a time start, then succeed; one in twenty fails), for
    trying the reconciler without IoTDA (README, "IoTDA: per-device status")."""
    async with FakeIoTDA() as fake:
        task = fake.create_task(
            [f"meter-{i:05d}" for i in range(devices)],
            task_type="firmwareUpgrade",
            app_id="demo-app",
        )
        print(f"export TRACKER_IOTDA_ENDPOINT={fake.endpoint}")
        print(f"export TRACKER_IOTDA_PROJECT_ID={fake.project_id}")
        print(f"export TRACKER_IOTDA_AK={fake.ak} TRACKER_IOTDA_SK={fake.sk}")
        print(f"# task {task.task_id}: {devices} devices, moving every {step:g} s", flush=True)
        tenth = max(1, devices // 10)
        while task.status == "Processing":
            await asyncio.sleep(step)
            task.move(
                "Processing",
                "Fail",
                max(1, tenth // 10),
                error=("IOTDA.014112", "download timed out"),
            )
            task.move("Processing", "Success")
            if not task.move("Waitting", "Processing", tenth):
                task.finish()
        print(f"# task {task.task_id}: {task.status}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_iotda")
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--step", type=float, default=5.0, help="seconds between moves")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(arguments.devices, arguments.step))
