"""POST /v1/notifications over a real port: answers, refusals kept in `rejected`, retries, types."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.waiting import until
from tracker.metrics import REGISTRY


async def post(
    client: TestClient[Any, Any], body: bytes | io.BytesIO | AsyncIterator[bytes], **kwargs: Any
) -> ClientResponse:
    return await client.post(
        "/v1/notifications", data=body, headers={"Content-Type": "application/json"}, **kwargs
    )


async def all_events(
    client: TestClient[Any, Any], token: str | None = None
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get("/v1/events", params={"limit": "1000"}, headers=headers)
    assert response.status == 200
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


async def test_every_example_is_accepted_and_logged_verbatim(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    for stem, raw in examples.items():
        response = await post(client, raw)
        assert response.status == 200, stem
        answer = await response.json()
        assert isinstance(answer["position"], int)
        assert answer["recognised"] is True
        stored = await client.get(f"/v1/events/{answer['position']}/raw")
        assert await stored.read() == raw, stem
    logged = await all_events(client)
    assert [e["payload"] for e in logged] == [json.loads(raw) for raw in examples.values()]


def _error_of(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"", 400, "empty_body"),
        (b"not json", 400, "invalid_json"),
        (b'{"a": 1', 400, "invalid_json"),
        (b"[1, 2]", 400, "not_an_object"),
        (b'"a string"', 400, "not_an_object"),
        (b'{"notifyType": "swUpgradeStateChangeNotify", "deviceId": "\xff"}', 400, "invalid_utf8"),
        (b'{"notifyType": "swUpgradeStateChangeNotify"}', 422, "schema_violation"),
    ],
)
async def test_bad_bodies_get_a_clear_json_error_and_are_kept(
    client: TestClient[Any, Any], body: bytes, status: int, code: str
) -> None:
    response = await post(client, body)
    assert response.status == status
    assert response.content_type == "application/json"
    assert _error_of(await response.json())["code"] == code
    rejected = (await (await client.get("/v1/rejected")).json())["items"]
    assert len(rejected) == 1
    assert (rejected[0]["status"], rejected[0]["code"]) == (status, code)
    assert rejected[0]["body_base64"] is not None
    assert base64.b64decode(rejected[0]["body_base64"]) == body
    assert await all_events(client) == []


async def test_a_schema_violation_names_the_field(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    body = json.loads(examples["oceanconnect-fwUpgradeStateChangeNotify"])
    body["step"] = 2
    response = await post(client, json.dumps(body).encode())
    assert response.status == 422
    error = _error_of(await response.json())
    assert error["details"][0]["field"] == "step"
    assert "step" in error["message"]


async def test_an_oversized_body_is_413_and_its_prefix_is_kept(
    make_client: MakeClient, examples: dict[str, bytes]
) -> None:
    client = await make_client(max_body_bytes=100)
    response = await post(client, b'{"pad": "' + b"x" * 200 + b'"}')
    assert response.status == 413
    assert _error_of(await response.json())["code"] == "body_too_large"
    [kept] = (await (await client.get("/v1/rejected")).json())["items"]
    assert (kept["status"], kept["truncated"], len(kept["body"])) == (413, True, 100)
    # Exactly at the limit is fine.
    exact = b'{"a": "' + b"y" * 91 + b'"}'
    assert len(exact) == 100
    assert (await post(client, exact)).status == 200


async def test_the_default_limit_is_one_mebibyte(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    assert (await post(client, io.BytesIO(big))).status == 413
    # A recognised notification (an unrecognised body has a cap of its own, far below): a
    # state change with an extra field, exactly 1 MiB.
    head = examples["oceanconnect-swUpgradeStateChangeNotify"].rstrip()[:-1] + b',"pad": "'
    fits = head + b"x" * (1024 * 1024 - len(head) - 2) + b'"}'
    assert len(fits) == 1024 * 1024
    assert (await post(client, io.BytesIO(fits))).status == 200


async def test_a_body_sent_in_chunks_without_length_is_limited_too(
    make_client: MakeClient,
) -> None:
    client = await make_client(max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"pad": "'
        for _ in range(20):
            yield b"z" * 100
        yield b'"}'

    response = await post(client, chunks())
    assert response.status == 413


async def test_the_same_body_three_times_is_three_deliveries(
    client: TestClient[Any, Any], examples: dict[str, bytes]
) -> None:
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    positions = [(await (await post(client, raw)).json())["position"] for _ in range(3)]
    assert positions == sorted(set(positions))
    logged = await all_events(client)
    assert [e["position"] for e in logged] == positions
    assert all(e["payload"] == json.loads(raw) for e in logged)


async def test_an_unrecognised_type_is_accepted_and_logged(client: TestClient[Any, Any]) -> None:
    raw = (
        b'{"notifyType": "deviceDataChanged", "deviceId": "d-1", "service": {"data": {"t": 21.5}}}'
    )
    response = await post(client, raw)
    assert response.status == 200
    answer = await response.json()
    assert (answer["recognised"], answer["event_type"], answer["stream_type"]) == (
        False,
        "deviceDataChanged",
        "unrecognised",
    )
    [event] = await all_events(client)
    assert event["payload"] == json.loads(raw)
    assert (await (await client.get("/v1/rejected")).json())["items"] == []


async def test_payload_is_served_exactly_as_received(client: TestClient[Any, Any]) -> None:
    raw = b'{"notifyType":"deviceDataChanged","big":123456789012345678901234567890,"f":1.50}'
    position = (await (await post(client, raw)).json())["position"]
    listing = await (await client.get("/v1/events")).read()
    assert b'"payload":' + raw in listing
    assert await (await client.get(f"/v1/events/{position}/raw")).read() == raw


async def test_unknown_paths_and_methods_answer_json(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status == 404
    assert _error_of(await response.json())["code"] == "not_found"
    response = await client.get("/v1/notifications")
    assert response.status == 405
    assert _error_of(await response.json())["code"] == "method_not_allowed"
    response = await client.get("/v1/events/999/raw")
    assert response.status == 404


def ingests_ended() -> float:
    """POSTs to /v1/notifications whose handling has ended, answered or not, in this process
    (the histogram observes each once, as its handler finishes)."""
    return REGISTRY.get_sample_value("tracker_ingest_seconds_count") or 0.0


async def test_a_sender_that_hangs_up_mid_body_harms_nothing(
    client: TestClient[Any, Any], examples: dict[str, bytes], caplog: pytest.LogCaptureFixture
) -> None:
    ended = ingests_ended()
    _, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b'POST /v1/notifications HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"notifyType"'
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    await until(lambda: ingests_ended() == ended + 1, "the server to end the hung-up request")
    assert (await post(client, examples["iotda-batchtask-update"])).status == 200
    assert len(await all_events(client)) == 1
    assert (await (await client.get("/v1/rejected")).json())["items"] == []
    await client.close()  # waits for every handler: an error logged late is in caplog now
    assert [r for r in caplog.records if r.levelname in {"ERROR", "CRITICAL"}] == []


async def test_a_broken_content_encoding_is_a_415_like_any_encoding(
    client: TestClient[Any, Any],
) -> None:
    """Bodies are never inflated (http/protocol.py), so a broken one is refused as any
    compressed body is, and kept as it came."""
    response = await client.post(
        "/v1/notifications", data=b"definitely not gzip", headers={"Content-Encoding": "gzip"}
    )
    assert response.status == 415
    assert (await response.json())["error"]["code"] == "unsupported_encoding"
    [kept] = (await (await client.get("/v1/rejected")).json())["items"]
    assert base64.b64decode(kept["body_base64"]) == b"definitely not gzip"
