"""IoTDA's ListBatchTasks and ShowBatchTask, read, and StopBatchTask, called, through Huawei's own
SDK (huaweicloudsdkiotda).

The SDK's models are the truth about the API, and its core signs with AK/SK. Of an answer we keep
the body itself (the SDK's `raw_content`: the bytes after HTTP content decoding, never parsed and
re-serialised) and the request line as sent, for the audit trail. The SDK's client blocks, so
each `PlatformApi` runs it on one thread of its own: its calls never overlap, and the event loop
never waits on the network. Every failure leaves as one of five errors, by what the caller should
do about it (`_failure`, the one place they are told apart). The SDK retries nothing: a 429 or a
5xx goes back to the caller, who paces every request (budget.py) and backs off for all of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, Self
from urllib.parse import urlsplit

import orjson
import requests
from huaweicloudsdkcore.auth.credentials import BasicCredentials, DerivedCredentials
from huaweicloudsdkcore.exceptions.exceptions import (
    ClientRequestException,
    SdkException,
    ServiceResponseException,
)
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkcore.region.region import Region
from huaweicloudsdkiotda.v5 import (
    BatchTargets,
    IoTDAClient,
    ListBatchTasksRequest,
    ShowBatchTaskRequest,
    StopBatchTaskRequest,
)
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from tracker.iotda.credentials import Credentials

Sdk = Any  # an object of Huawei's SDK, which has no type hints (no py.typed)
LONGEST_RETRY_AFTER = 3600.0  # seconds: a Retry-After beyond this is not a pause we honour
# The SDK logs each failure at ERROR on this logger, which has no handler and does not
# propagate, so logging's last resort would print it to stderr outside tracker's log format.
# Everything it says reaches the caller in the exception instead.
_SDK_LOGGER = logging.getLogger("HuaweiCloud-SDK-IoTDAClient")


class Answer(NamedTuple):
    raw: bytes  # the response body, exactly as received
    document: dict[str, Any]  # it, parsed (orjson)
    request: str  # "GET /v5/iot/{project}/batchtasks/{id}?limit=50&marker=…" as sent
    # (a POST's body is not in it: StopBatchTask's is the caller's `targets`, or `{}`)


class PlatformError(Exception):
    """IoTDA did not answer a request with what we asked for; str() is one line."""

    def __init__(self, message: str, *, request: str | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.request = request  # the request line as sent, when it was


class Throttled(PlatformError):  # noqa: N818 - reads as "IoTDA throttled us"
    """429: the platform's flow control. Hold every request, for `retry_after` if it said."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, request: str | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.retry_after = retry_after


class Unavailable(PlatformError):  # noqa: N818 - reads as "IoTDA is unavailable"
    """5xx, a timeout, no connection, or an answer that is not a JSON object: try later."""

    def __init__(
        self, message: str, *, status: int | None = None, request: str | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.status = status


class Denied(PlatformError):  # noqa: N818 - reads as "access denied"
    """401/403: the credentials, or their rights. Five failed signatures in a row lock the AK
    for five minutes, so do not hammer."""

    def __init__(
        self, message: str, *, status: int, error_code: str, request: str | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.status, self.error_code = status, error_code


class Missing(PlatformError):  # noqa: N818 - reads as "the task is missing"
    """404: the task is gone."""


class Refused(PlatformError):  # noqa: N818 - reads as "our request was refused"
    """Any other 4xx: our request is wrong, and asking again will not help."""

    def __init__(
        self, message: str, *, status: int, error_code: str, request: str | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.status, self.error_code = status, error_code


class PlatformApi:
    def __init__(
        self, credentials: Credentials, *, timeout: tuple[float, float] = (10.0, 30.0)
    ) -> None:
        _check(credentials, timeout)
        self._credentials = credentials
        self._sent: str | None = None  # the request line of the call in flight
        self._headers: Mapping[str, str] = {}  # the headers of its answer
        handler = HttpHandler().add_request_handler(self._note_request)
        handler.add_response_handler(self._note_response)
        self._client = _client(credentials, timeout, handler)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iotda")
        self._closed = False
        if not _SDK_LOGGER.handlers:
            _SDK_LOGGER.addHandler(logging.NullHandler())

    async def list_tasks(
        self,
        *,
        task_type: str,
        app_id: str | None = None,
        status: str | None = None,
        marker: str | None = None,
        limit: int = 50,
    ) -> Answer:
        request = ListBatchTasksRequest(
            instance_id=self._credentials.instance_id,
            app_id=app_id,
            task_type=task_type,
            status=status,
            limit=limit,
            marker=marker,
        )
        return await self._run("ListBatchTasks", self._client.list_batch_tasks, request)

    async def show_task(
        self,
        task_id: str,
        *,
        detail_status: str | None = None,
        marker: str | None = None,
        limit: int = 50,
    ) -> Answer:
        request = ShowBatchTaskRequest(
            instance_id=self._credentials.instance_id,
            task_id=task_id,
            task_detail_status=detail_status,
            limit=limit,
            marker=marker,
        )
        return await self._run("ShowBatchTask", self._client.show_batch_task, request)

    async def stop_task(self, task_id: str, targets: list[str] | None = None) -> Answer:
        """Stop an upgrade task: without targets every subtask still Waitting, Processing or
        FailWaitRetry (body `{}`; the task goes Stopping, then Stopped), or only these devices'
        (at most 100). The answer's `targets` say, per device given, "success" or "failure"
        with its error code. A task finished or already Stopping is Refused."""
        request = StopBatchTaskRequest(
            instance_id=self._credentials.instance_id,
            task_id=task_id,
            body=BatchTargets(targets=targets),
        )
        return await self._run("StopBatchTask", self._client.stop_batch_task, request)

    async def close(self) -> None:
        """Close the SDK's HTTP session and the threads; a second close does nothing."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._worker, self._close_client)
        self._worker.shutdown(wait=False)  # its one thread is idle: it ends on its own

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _run(self, operation: str, call: Callable[[Sdk], Sdk], request: Sdk) -> Answer:
        if self._closed:
            raise RuntimeError("this PlatformApi is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._exchange, operation, call, request)

    def _exchange(self, operation: str, call: Callable[[Sdk], Sdk], request: Sdk) -> Answer:
        """One request, start to end, on the worker thread: `_sent` and `_headers` are its own."""
        self._sent, self._headers = None, {}
        try:
            response = call(request)
        except (SdkException, requests.RequestException) as error:
            raise self._failure(operation, error) from None  # it says all the SDK's error did
        line = self._sent or operation
        raw, status = bytes(response.raw_content or b""), response.status_code
        if status != 200:
            raise Unavailable(f"{operation} {line}: answered {status}", status=status, request=line)
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            message = f"{operation} {line}: answered 200 with a body that is not a JSON object"
            raise Unavailable(message, status=status, request=self._sent)
        return Answer(raw, document, line)

    def _failure(self, operation: str, error: Exception) -> PlatformError:
        line = self._sent
        where = f"{operation} {line or '(not sent)'}"
        if not isinstance(error, ServiceResponseException):  # no answer: transport, timeouts
            return Unavailable(self._scrub(f"{where}: {error}"), request=line)
        status, code = int(error.status_code), str(error.error_code or "")
        told = f"{status} {code} {error.error_msg} (request {error.request_id})"
        said = self._scrub(f"{where}: {told}")
        if not isinstance(error, ClientRequestException) or status >= 500:
            return Unavailable(said, status=status, request=line)
        if status == 429:
            return Throttled(said, retry_after=retry_after(self._headers), request=line)
        if status in {401, 403}:
            return Denied(said, status=status, error_code=code, request=line)
        if status == 404:
            return Missing(said, request=line)
        return Refused(said, status=status, error_code=code, request=line)

    def _scrub(self, message: str) -> str:
        """Never the SK in a message, whatever a platform or a library echoes back."""
        return message.replace(self._credentials.sk, "[SK]")

    def _note_request(self, **sent: Sdk) -> None:
        """The SDK's request handler: the request is signed, not yet sent."""
        request = sent["request"]
        self._sent = f"{request.method} {request.uri}"  # the credentials are in headers only

    def _note_response(self, **answered: Sdk) -> None:
        """The SDK's response handler: every answer, before the SDK raises for its status."""
        self._headers = answered["response"].headers

    def _close_client(self) -> None:
        http = self._client.get_http_client()
        self._client.close()  # its requests session
        http.executor.shutdown(wait=True)  # the SDK signs on a pool of its own, left by close()


def retry_after(headers: Mapping[str, str]) -> float | None:
    """A 429's Retry-After in seconds (RFC 9110: seconds, or an HTTP date); None if absent or
    unreadable. IoTDA's documented 429 carries none, but a gateway in front of it may."""
    text = (headers.get("Retry-After") or "").strip()
    if text.isascii() and text.isdigit():
        return min(float(text), LONGEST_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), LONGEST_RETRY_AFTER)


def _check(credentials: Credentials, timeout: tuple[float, float]) -> None:
    parts = urlsplit(credentials.endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the IoTDA endpoint must be an http:// or https:// URL")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("the IoTDA endpoint is a scheme, a host and a port, nothing more")
    for name in ("project_id", "ak", "sk"):
        if not getattr(credentials, name):
            raise ValueError(f"the IoTDA {name} is empty")
    if len(timeout) != 2 or not all(seconds > 0 for seconds in timeout):
        raise ValueError("the IoTDA timeouts are (connect, read), both positive seconds")


def _client(credentials: Credentials, timeout: tuple[float, float], handler: Sdk) -> Sdk:
    config = HttpConfig.get_default_config()
    config.timeout = timeout  # (connect, read); the SDK's own default is (60, 120)
    config.retry_times = 0  # its default too: we pace and back off ourselves
    keys = BasicCredentials(credentials.ak, credentials.sk, credentials.project_id)
    builder = IoTDAClient.new_builder().with_credentials(keys).with_http_config(config)
    builder = builder.with_http_handler(handler)
    if credentials.region is None:  # SDK-HMAC-SHA256
        builder = builder.with_endpoint(credentials.endpoint)
    else:  # V11-HMAC-SHA256, derived for the region, at any host not Huawei Cloud's own default
        keys.with_derived_predicate(DerivedCredentials.get_default_derived_predicate())
        builder = builder.with_region(Region(credentials.region, credentials.endpoint))
    client = builder.build()  # no network: the project id is given, so no IAM look-up
    _take_429s_back(client)
    return client


def _take_429s_back(client: Sdk) -> None:
    """Let a 429 reach the SDK's error handling like any other 4xx.

    The SDK's session retries 429s in urllib3 (`Retry(total=retry_times, status_forcelist=[429])`)
    even at retry_times 0: it then raises at the first 429, and the SDK reports it without the
    platform's body or headers (error code "429", no request id, no Retry-After). Its exceptions
    carry no headers in any case, so `_note_response` keeps them. An adapter that retries nothing
    puts the 429 back in the SDK's hands; transport errors are wrapped exactly as before.
    `_session` is the SDK's private name: if it goes, a 429 is still Throttled, without the
    platform's code or Retry-After, and tests/integration/test_iotda_api.py fails.
    """
    session = getattr(client.get_http_client(), "_session", None)
    if isinstance(session, requests.Session):
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=Retry(total=0))
        session.mount("https://", adapter)
        session.mount("http://", adapter)
