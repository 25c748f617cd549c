"""Requests aiohttp cannot parse get our JSON error and one log line (issue 12, item 2)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

MALFORMED = {
    "not HTTP": b"GARBAGE\r\n\r\n",
    "a header without a colon": b"GET /v1/devices HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    "bytes not allowed in a path": b"GET /v1/devices/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    "a header line past the limit": b"GET /v1/devices HTTP/1.1\r\nHost: x\r\nX-Long: "
    + b"a" * 20_000
    + b"\r\n\r\n",
    "TLS on the HTTP port": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
}


async def exchange(
    client: TestClient[Any, Any], request: bytes
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 10)  # the connection is closed after
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_request_that_is_not_http_gets_a_json_error(
    client: TestClient[Any, Any], request_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.server")
    status, headers, body = await exchange(client, request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "malformed_request"
    assert error["message"].startswith("the request is not valid HTTP: ")
    # The server goes on serving...
    assert (await client.get("/healthz")).status == 200
    await client.close()  # ...and once it has stopped, nothing more can be logged:
    server_lines = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(server_lines) == 1
    assert server_lines[0].levelno == logging.INFO
    assert server_lines[0].exc_info is None  # no traceback
