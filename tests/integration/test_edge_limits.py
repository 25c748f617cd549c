"""The edge of the HTTP server, route by route: compressed bodies, body and header deadlines, the
sign-in body cap, unread bodies, the connection cap (tracker/http/protocol.py, body.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.waiting import until

INGEST = "edge-ingest-token"


@dataclass
class Exchange:
    status: int
    headers: dict[str, str]
    body: bytes
    answered_after: float
    closed_after: float  # when the server ended the connection (inf: not within the wait)


async def exchange(
    client: TestClient[Any, Any], head: bytes, body: bytes = b"", wait: float = 10
) -> Exchange:
    """Send `head` and `body` on a connection of its own; read the answer, then wait for the
    server to close the connection (up to `wait` seconds)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    started = time.monotonic()
    try:
        writer.write(head + body)
        raw_head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        answered_after = time.monotonic() - started
        status_line, *lines = raw_head.decode("latin-1").strip().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        answer = await reader.readexactly(int(headers.get("content-length", "0")))
        closed_after = float("inf")
        with contextlib.suppress(TimeoutError, ConnectionError):
            if await asyncio.wait_for(reader.read(), wait - answered_after) == b"":
                closed_after = time.monotonic() - started
        return Exchange(int(status_line.split()[1]), headers, answer, answered_after, closed_after)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def post_head(path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def code_of(answer: Exchange) -> str:
    code: str = json.loads(answer.body)["error"]["code"]
    return code


async def test_a_compressed_delivery_is_415_kept_as_received_and_never_inflated(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    compressed = gzip.compress(examples["oceanconnect-swUpgradeStateChangeNotify"])
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    response = await client.post("/v1/notifications", data=compressed, headers=headers)
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_encoding"
    [kept] = (await (await client.get("/v1/rejected")).json())["items"]
    assert (kept["status"], kept["code"], kept["truncated"]) == (415, "unsupported_encoding", False)
    assert base64.b64decode(kept["body_base64"]) == compressed  # the bytes sent, not inflated
    assert (await (await client.get("/v1/events")).json())["items"] == []
    # Identity is no encoding at all: accepted.
    headers["Content-Encoding"] = "identity"
    plain = examples["oceanconnect-swUpgradeStateChangeNotify"]
    assert (await client.post("/v1/notifications", data=plain, headers=headers)).status == 200


async def test_a_body_refused_unread_is_not_drained_the_connection_is_closed(
    make_client: MakeClient,
) -> None:
    """401 on a body still on its way: answered at once and closed, not read for 10 s."""
    client = await make_client(ingest_token=INGEST)
    head = post_head("/v1/notifications", 1_000_000, "Content-Encoding: gzip")
    answer = await exchange(client, head, b"\x1f\x8b" + b"\0" * 1000)
    assert answer.status == 401
    assert answer.headers["connection"].lower() == "close"
    assert answer.answered_after < 1.0
    assert answer.closed_after < 1.0  # aiohttp's lingering would have waited up to 10 s


async def test_a_body_refused_unread_closes_the_connection_even_when_it_arrived_whole(
    make_client: MakeClient,
) -> None:
    """The same whether the body was still coming or all there when the answer was ready:
    under load a refused bomb had arrived whole, and its connection was kept alive until the
    header deadline (15 s in CI). What decides is what the handler read, never timing."""
    client = await make_client(ingest_token=INGEST)
    body = b'{"notifyType": "swUpgradeStateChangeNotify"}'
    answer = await exchange(client, post_head("/v1/notifications", len(body)), body, wait=5)
    assert answer.status == 401
    assert answer.headers["connection"].lower() == "close"
    assert answer.closed_after < 1.0


async def test_a_slow_sign_in_body_is_cut_off_at_the_body_deadline(
    make_client: MakeClient,
) -> None:
    client = await make_client(read_token="edge-read-token-0001", body_timeout=1.0)
    answer = await exchange(client, post_head("/v1/session", 100_000), b"{")
    assert answer.status == 408
    assert code_of(answer) == "body_timeout"
    assert 0.9 <= answer.answered_after < 3.0
    assert answer.closed_after < 3.0


async def test_a_sign_in_body_is_capped_at_4_kib(make_client: MakeClient) -> None:
    client = await make_client(read_token="edge-read-token-0001")
    padded = json.dumps({"token": "x", "pad": "p" * 5000}).encode()
    response = await client.post(
        "/v1/session", data=padded, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "body_too_large"
    small = json.dumps({"token": "edge-read-token-0001"}).encode()
    response = await client.post(
        "/v1/session", data=small, headers={"Content-Type": "application/json"}
    )
    assert response.status == 200


async def test_headers_that_never_end_and_idle_keep_alives_are_closed_at_the_header_deadline(
    make_client: MakeClient,
) -> None:
    client = await make_client(header_timeout=1.0)
    started = time.monotonic()
    slow_reader, slow = await asyncio.open_connection(client.host, client.port)
    slow.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    idle_reader, idle = await asyncio.open_connection(client.host, client.port)
    idle.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in await asyncio.wait_for(idle_reader.readuntil(b"\r\n\r\n"), 5)
    try:

        async def closed(reader: asyncio.StreamReader) -> float:
            with contextlib.suppress(ConnectionError):
                while await reader.read(4096):
                    pass
            return time.monotonic() - started

        slow_closed, idle_closed = await asyncio.wait_for(
            asyncio.gather(closed(slow_reader), closed(idle_reader)), 10
        )
    finally:
        slow.close()
        idle.close()
    assert 0.9 <= slow_closed < 3.0
    assert 0.9 <= idle_closed < 3.0


async def test_past_the_connection_cap_a_connection_gets_503_at_once(
    make_client: MakeClient,
) -> None:
    client = await make_client(max_connections=5)
    assert client.server.runner is not None
    server = client.server.runner.server
    assert server is not None
    held = [await asyncio.open_connection(client.host, client.port) for _ in range(5)]
    try:
        await until(lambda: len(server.connections) == 5, "the server to hold all five")
        answer = await exchange(client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", wait=5)
        assert answer.status == 503
        assert code_of(answer) == "too_many_connections"
        assert answer.headers["connection"].lower() == "close"
        assert answer.headers["retry-after"] == "1"
        assert answer.answered_after < 0.5
        assert answer.closed_after < 0.5  # we end it as soon as the client reads and closes
    finally:
        for _, writer in held:
            writer.close()
    await until(lambda: not server.connections, "the server to let the five go")
    assert (await client.get("/healthz")).status == 200  # room again
