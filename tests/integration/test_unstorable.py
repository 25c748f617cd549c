"""Content the database could refuse never becomes a 5xx (issue 12, item 1).

Every text of a delivery at its longest, in characters of four UTF-8 bytes that no compression
shortens, every number JSON allows, and a delivery the database refuses outright: each is
stored (200), or refused and kept in `rejected` (4xx), and the deliveries around it land.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker
from tracker.domain.notifications import MAX_CODE, MAX_TEXT
from tracker.domain.operation import ERROR_DESC_KEY

RANDOM = random.Random(12)


def wide(length: int) -> str:
    """`length` random characters of 4 UTF-8 bytes each (CJK extension B): incompressible."""
    return "".join(chr(RANDOM.randrange(0x20000, 0x2A6D0)) for _ in range(length))


def ids(length: int = 256) -> dict[str, str]:
    return {
        "deviceId": wide(length),
        "appId": wide(length),
        "operationId": wide(length),
        "subOperationId": wide(length),
    }


def sw_result(**fields: object) -> dict[str, object]:
    return {
        "notifyType": "swUpgradeResultNotify",
        **ids(),
        "swUpgradeResult": "FAIL",
        "curVersion": wide(MAX_CODE),
        "targetVersion": wide(MAX_CODE),
        "sourceVersion": wide(MAX_CODE),
        "errorCode": wide(MAX_CODE),
        "resultDesc": wide(MAX_TEXT),
        "description": wide(MAX_TEXT),
        "upgradeTime": wide(MAX_TEXT),
        **fields,
    }


def fw_result() -> dict[str, object]:
    return {
        "notifyType": "fwUpgradeResultNotify",
        **ids(),
        "status": "FAIL",
        "curVersion": wide(MAX_CODE),
        "targetVersion": wide(MAX_CODE),
        "sourceVersion": wide(MAX_CODE),
        "statusDesc": wide(MAX_TEXT),
        "upgradeTime": wide(MAX_TEXT),
    }


def task() -> dict[str, object]:
    return {
        "resource": "batchtask",
        "event": "update",
        "event_time": "20261127T010203Z",
        "request_id": wide(MAX_TEXT),
        "notify_data": {
            "body": {
                "app_id": wide(256),
                "task_id": wide(256),
                "task_type": "firmwareUpgrade",
                "status": "Waitting",
                "status_desc": wide(MAX_TEXT),
            }
        },
    }


async def post(client: TestClient[Any, Any], body: object) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/notifications", data=json.dumps(body).encode())
    answer: dict[str, Any] = await response.json()
    return response.status, answer


async def test_every_text_at_its_longest_is_stored(make_client: MakeClient) -> None:
    """Ids of 256 characters and codes of 128 are keys of indexes PostgreSQL bounds at 2,704
    bytes; before, a long errorCode or version answered 500 and the delivery was lost."""
    # The unrecognised body below is 96 KiB of 4-byte characters: past the default cap of
    # unrecognised bodies (tested in test_unrecognised_limits.py), which is not what this tests.
    client = await make_client(unrecognised_max_bytes=1024 * 1024)
    bodies = [
        sw_result(),
        {**sw_result(), "notifyType": "swUpgradeStateChangeNotify", "swUpgradeState": "idle"},
        fw_result(),
        {**fw_result(), "notifyType": "fwUpgradeStateChangeNotify", "step": "1"}
        | {"stepDesc": wide(MAX_TEXT)},
        task(),
        {"notifyType": wide(MAX_TEXT), "deviceId": wide(MAX_TEXT)},  # logged, unrecognised
    ]
    for body in bodies:
        status, answer = await post(client, body)
        assert status == 200, answer
    # One operation's rollup with a long error: counted by its code and its description's start.
    body = sw_result(resultDesc=wide(MAX_TEXT))
    status, _ = await post(client, body)
    assert status == 200
    rollup = await (await client.get(f"/v1/operations/{body['operationId']}")).json()
    [error] = rollup["errors"]
    assert error["error_code"] == body["errorCode"]
    assert error["result_desc"] == str(body["resultDesc"])[:ERROR_DESC_KEY]
    assert rollup["target_versions"] == {body["targetVersion"]: 1}


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("18446744073709551615", 200),  # the largest unsigned 64-bit integer
        ("18446744073709551616", 200),  # past it: read as a double, the body kept as sent
        ("-9223372036854775809", 200),
        ("1" + "0" * 400, 400),  # past the largest double: not a number the parser can hold
        ("1e308", 200),
        ("-1e308", 200),
        ("1e-400", 200),
        ("0.000000000000000000000000000000000000000001", 200),
    ],
)
async def test_any_number_json_allows_is_stored_or_refused_never_a_5xx(
    client: TestClient[Any, Any], number: str, status: int
) -> None:
    raw = (
        '{"notifyType": "swUpgradeResultNotify", "deviceId": "n", "appId": "a", '
        f'"operationId": "o", "subOperationId": "s", "swUpgradeResult": "FAIL", '
        f'"upgradeTime": {number}, "errorCode": {number}, "curVersion": {number}, '
        f'"extra": {{"deep": [{number}]}}}}'
    ).encode()
    response = await client.post("/v1/notifications", data=raw)
    assert response.status == status, await response.text()
    rejected = await (await client.get("/v1/rejected")).json()
    if status == 200:  # stored byte for byte
        position = (await response.json())["position"]
        assert await (await client.get(f"/v1/events/{position}/raw")).read() == raw
        assert rejected["items"] == []
    else:  # refused by the parser: kept with its reason
        assert (await response.json())["error"]["code"] == "invalid_json"
        assert [r["body"] for r in rejected["items"]] == [raw.decode()]


async def test_nesting_past_the_parser_limit_is_a_400(client: TestClient[Any, Any]) -> None:
    deep = '{"notifyType": "deviceDataChanged", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    response = await client.post("/v1/notifications", data=deep.encode())
    assert response.status == 400
    shallow = '{"notifyType": "deviceDataChanged", "x": ' + "[" * 500 + "]" * 500 + "}"
    assert (await client.post("/v1/notifications", data=shallow.encode())).status == 200


async def test_a_delivery_the_database_refuses_is_a_422_kept_in_rejected(
    client: TestClient[Any, Any], database_url: str
) -> None:
    """The class, whatever the cause: here a CHECK the test adds, refusing one device."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE device_tracks ADD CONSTRAINT refuse_poison CHECK (device_id <> 'poison')"
        )
    finally:
        await conn.close()
    body = sw_result(deviceId="poison")
    others = [sw_result() for _ in range(30)]
    answers = await asyncio.gather(*(post(client, b) for b in [*others[:15], body, *others[15:]]))
    statuses = [status for status, _ in answers]
    assert statuses == [200] * 15 + [422] + [200] * 15
    refused = answers[15][1]["error"]
    assert refused["code"] == "unstorable"
    assert "CheckViolationError" in refused["message"]
    rejected = await (await client.get("/v1/rejected")).json()
    assert [(r["status"], r["code"]) for r in rejected["items"]] == [(422, "unstorable")]
    [kept] = rejected["items"]
    sent = json.dumps(body).encode()  # as `post` sent it; kept whole by its size and hash
    assert (kept["size"], kept["sha256"]) == (len(sent), hashlib.sha256(sent).hexdigest())
    health = await client.get("/readyz")
    assert health.status == 200  # and the server keeps serving


async def test_import_refuses_a_line_the_database_refuses_and_keeps_the_rest(
    database_url: str, tmp_path: Path
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE device_tracks ADD CONSTRAINT refuse_poison CHECK (device_id <> 'poison')"
        )
    finally:
        await conn.close()
    lines = [sw_result(deviceId=f"d-{n}") for n in range(5)]
    lines[2] = sw_result(deviceId="poison")
    source = tmp_path / "log.jsonl"
    source.write_bytes(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
    done = await asyncio.to_thread(tracker, database_url, "import", str(source))
    assert done.returncode == 1  # a line was refused
    assert "import: 4 events appended" in done.stdout
    [refused] = [line for line in done.stderr.splitlines() if line.startswith("refused: ")]
    assert refused.startswith("refused: line 3: unstorable: CheckViolationError")
