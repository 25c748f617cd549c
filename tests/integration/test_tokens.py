"""Ingest and read tokens: header or URL, constant-time, and not interchangeable."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.conftest import MakeClient
from tracker.config import Settings
from tracker.http import openapi
from tracker.http.app import create_app
from tracker.http.attempts import BUDGET
from tracker.http.auth import GUARDS
from tracker.http.routes import ROUTES, Route

INGEST, READ, ADMIN = "ingest-secret-0001", "read-secret-00002", "admin-secret-00003"


@pytest.fixture
async def guarded(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(ingest_token=INGEST, read_token=READ, admin_token=ADMIN)


async def test_ingest_accepts_a_bearer_header_or_a_url_token(
    guarded: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    raw = examples["iotda-batchtask-update"]
    ok = await guarded.post(
        "/v1/notifications", data=raw, headers={"Authorization": f"Bearer {INGEST}"}
    )
    assert ok.status == 200
    ok = await guarded.post(f"/v1/notifications?token={INGEST}", data=raw)
    assert ok.status == 200


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({}, ""),
        ({"Authorization": "Bearer wrong"}, ""),
        ({}, "?token=wrong"),
        ({"Authorization": f"Bearer {READ}"}, ""),
        ({}, f"?token={READ}"),
        ({"Authorization": INGEST}, ""),
    ],
)
async def test_ingest_refuses_a_missing_wrong_or_read_token(
    guarded: TestClient[Any, Any], examples: dict[str, bytes], headers: dict[str, str], query: str
) -> None:
    response = await guarded.post(
        f"/v1/notifications{query}", data=examples["iotda-batchtask-update"], headers=headers
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/events", 200), ("/v1/rejected", 200), ("/v1/events/1/raw", 404)],  # the log is empty
)
async def test_reads_need_the_read_token_not_the_ingest_token(
    guarded: TestClient[Any, Any], path: str, status: int
) -> None:
    assert (await guarded.get(path)).status == 401
    assert (await guarded.get(path, headers={"Authorization": f"Bearer {INGEST}"})).status == 401
    assert (await guarded.get(f"{path}?token={INGEST}")).status == 401
    read = await guarded.get(path, headers={"Authorization": f"Bearer {READ}"})
    assert read.status == status
    if status == 404:  # past the guard: the position is not in the log
        assert (await read.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/events"),
        ("GET", "/v1/guards"),
        ("GET", "/v1/openapi.json"),
        ("GET", "/metrics"),
        ("PUT", "/v1/guards/g"),
    ],
)
async def test_the_admin_token_in_a_url_is_a_wrong_token(
    guarded: TestClient[Any, Any], method: str, path: str
) -> None:
    """Browsers, proxies and logs keep URLs: the admin token counts from the header alone, and
    in a URL it is refused, and counted, like any wrong token. The others keep their URL form."""
    if method == "GET":
        assert (await guarded.get(path, headers={"Authorization": f"Bearer {ADMIN}"})).status == 200
        assert (await guarded.get(f"{path}?token={READ}")).status == 200
    for _ in range(BUDGET):
        refused = await guarded.request(method, f"{path}?token={ADMIN}", json={})
        assert refused.status == 401
        assert (await refused.json())["error"]["code"] == "unauthorized"
    # Every one was a failure: the client is now over budget, even with the right header.
    waited = await guarded.get("/v1/events", headers={"Authorization": f"Bearer {READ}"})
    assert waited.status == 429


async def test_probes_need_no_token(guarded: TestClient[Any, Any]) -> None:
    assert (await guarded.get("/healthz")).status == 200
    assert (await guarded.get("/readyz")).status == 200


async def test_refused_deliveries_are_not_stored_when_unauthenticated(
    guarded: TestClient[Any, Any],
) -> None:
    assert (await guarded.post("/v1/notifications", data=b"junk")).status == 401
    rejected = await guarded.get("/v1/rejected", headers={"Authorization": f"Bearer {READ}"})
    assert (await rejected.json())["items"] == []


def _concrete(path: str) -> str:
    """A route's path with its parameters filled in."""
    return re.sub(r"\{\w+\}", "1", path)


TABLE = [*ROUTES, openapi.SELF]


def test_access_is_decided_by_the_route_table_alone(database_url: str) -> None:
    """Every route the application serves has the guard the table gives it; a route that got
    in any other way would have none, and fail here."""
    app = create_app(Settings(database_url=database_url), database_url)
    declared = {(op.method, op.path): op.guard for op in TABLE}
    routes = list(app.router.routes())
    assert len(routes) == len(TABLE)
    for route in routes:
        assert route in app[GUARDS], f"{route.method} {route.resource} has no guard"
        assert route.resource is not None
        canonical = re.sub(r"\{(\w+):\[\^/\]\+\}", r"{\1}", route.resource.canonical)
        assert app[GUARDS][route] == declared[route.method, canonical]
    assert {op.guard for op in TABLE} == {"ingest", "read", "metrics", "admin", "open"}


async def test_a_route_outside_the_table_is_closed(database_url: str) -> None:
    """Closed by default: a route added by other means needs the read token."""

    async def extra(_: web.Request) -> web.Response:
        return web.json_response({"secret": True})

    app = create_app(Settings(database_url=database_url, read_token=READ), database_url)
    app.router.add_route("GET", "/v1/extra", extra)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        assert (await client.get("/v1/extra")).status == 401
        authorised = await client.get("/v1/extra", headers={"Authorization": f"Bearer {READ}"})
        assert authorised.status == 200
    finally:
        await client.close()


OPEN_ANSWERS = {("POST", "/v1/session"): 400, ("GET", "/assets/{name}"): 404}


@pytest.mark.parametrize("operation", TABLE, ids=[f"{op.method} {op.path}" for op in TABLE])
async def test_header_bytes_that_are_not_utf8_are_refused_not_a_500(
    guarded: TestClient[Any, Any], operation: Route, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp hands such bytes on as surrogate escapes; comparing them once raised (500)."""
    request = (
        f"{operation.method} {_concrete(operation.path)} HTTP/1.1\r\nHost: x\r\n".encode()
        + b"Authorization: Bearer \xff\xfe\x80\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    reader, writer = await asyncio.open_connection(guarded.host, guarded.port)
    try:
        writer.write(request)
        status_line = await asyncio.wait_for(reader.readline(), 10)
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
    finally:
        writer.close()
    status = int(status_line.split()[1])
    if operation.guard == "open":
        # A sign-in of `{}` names no token; an asset "x" is none of ours; the rest serve.
        expected = OPEN_ANSWERS.get((operation.method, operation.path), 200)
        assert status == expected, status_line
    else:
        assert status == 401, status_line
        assert "application/json" in head.lower()
    await guarded.close()  # every handler has ended: an error logged late is in caplog now
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_metrics_token_reads_the_metrics_and_nothing_else(make_client: MakeClient) -> None:
    """Prometheus need not hold a token that reads every raw body."""
    client = await make_client(
        ingest_token=INGEST, read_token=READ, metrics_token="scrape-token-0003"
    )
    bearer = {"Authorization": "Bearer scrape-token-0003"}
    assert (await client.get("/metrics", headers=bearer)).status == 200
    assert (await client.get("/metrics?token=scrape-token-0003")).status == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {READ}"})).status == 200
    assert (await client.get("/metrics")).status == 401
    assert (
        await client.get("/metrics", headers={"Authorization": f"Bearer {INGEST}"})
    ).status == 401
    for path in ("/v1/devices", "/v1/events", "/v1/rejected", "/v1/openapi.json"):
        assert (await client.get(path, headers=bearer)).status == 401, path
