"""What the dashboard needs of the API: a session cookie that stands for the read token (and
nothing else), stuck counts beside each rollup, refusals newest first."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tracker.http import session
from tracker.http.session_cookie import Signed, sign, verified

INGEST, READ = "ingest-secret-for-sessions", "read-secret-for-sessions"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def sw(device: str, state: str, op: str = "op-1") -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "app",
            "operationId": op,
            "subOperationId": "s",
            "swUpgradeState": state,
        }
    ).encode()


@pytest.fixture
async def guarded(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client(ingest_token=INGEST, read_token=READ)


async def signed_in(client: TestClient[Any, Any]) -> str:
    answer = await client.post("/v1/session", data=json.dumps({"token": READ}), headers=JSON)
    assert answer.status == 200
    assert await answer.json() == {"required": True, "signed_in": True}
    cookie = answer.cookies[session.COOKIE]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert cookie["max-age"] == str(session.LIFETIME)
    assert READ not in cookie.value
    return cookie.value


async def test_the_session_cookie_reads_and_does_nothing_else(
    guarded: TestClient[Any, Any],
) -> None:
    assert await (await guarded.get("/v1/session")).json() == {
        "required": True,
        "signed_in": False,
    }
    value = await signed_in(guarded)
    cookie = {"Cookie": f"{session.COOKIE}={value}"}
    guarded.session.cookie_jar.clear()
    for path in ("/v1/operations", "/v1/devices", "/v1/rejected", "/v1/events", "/v1/openapi.json"):
        assert (await guarded.get(path, headers=cookie)).status == 200, path
        assert (await guarded.get(path)).status == 401, path
    assert (await guarded.get("/metrics", headers=cookie)).status == 401
    posted = await guarded.post("/v1/notifications", data=sw("d", "idle"), headers=cookie)
    assert posted.status == 401
    assert (await (await guarded.get("/v1/session", headers=cookie)).json())["signed_in"]
    out = await guarded.delete("/v1/session", headers=cookie)
    assert out.cookies[session.COOKIE].value == ""


@pytest.mark.parametrize("token", ["wrong", INGEST, ""])
async def test_only_the_read_token_signs_in(guarded: TestClient[Any, Any], token: str) -> None:
    answer = await guarded.post("/v1/session", data=json.dumps({"token": token}), headers=JSON)
    assert answer.status == 401
    assert session.COOKIE not in answer.cookies


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        (
            json.dumps({"token": READ}),
            {"Content-Type": "application/x-www-form-urlencoded"},
            "not_json",
        ),
        ("{", JSON, "malformed_json"),
        (json.dumps({"token": 7}), JSON, "no_token"),
        (json.dumps([READ]), JSON, "no_token"),
    ],
    ids=["a form (another site could send it)", "not JSON", "not a text", "not an object"],
)
async def test_a_sign_in_that_is_not_json_is_refused(
    guarded: TestClient[Any, Any], body: str, headers: dict[str, str], code: str
) -> None:
    answer = await guarded.post("/v1/session", data=body, headers=headers)
    assert answer.status == 400
    assert (await answer.json())["error"]["code"] == code


def test_a_cookie_is_bound_to_its_secret_and_its_expiry() -> None:
    secret, session_id, now = bytes(range(48)), "0123456789abcdef" * 2, 1_000_000.0
    issued = sign(secret, session_id, int(now) + session.LIFETIME)
    assert verified(issued, secret, now=now + session.LIFETIME - 1) == Signed(
        session_id, int(now) + session.LIFETIME
    )
    assert verified(issued, secret, now=now + session.LIFETIME) is None
    assert verified(issued, b"another secret" * 4, now=now) is None
    assert verified(issued, READ.encode(), now=now) is None  # not keyed by the read token
    named, expires, mac = issued.split(".")
    later = str(int(expires) + 3600)
    assert verified(f"{named}.{later}.{mac}", secret, now=now) is None  # expiry is signed
    other = "f" * 32
    assert verified(f"{other}.{expires}.{mac}", secret, now=now) is None  # so is the id
    for junk in ("", ".", "x.y", "²³.abc", "9" * 40 + ".0", f"{issued}\udcff", f"{issued}."):
        assert verified(junk, secret, now=now) is None


async def test_without_a_read_token_the_dashboard_needs_no_sign_in(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    assert await (await client.get("/v1/session")).json() == {
        "required": False,
        "signed_in": True,
    }


async def test_rollups_count_their_stuck_devices(guarded: TestClient[Any, Any]) -> None:
    ingest = {"Authorization": f"Bearer {INGEST}"}
    read = {"Authorization": f"Bearer {READ}"}
    for device, state in (("a", "downloading"), ("b", "updating"), ("c", "idle")):
        assert (await guarded.post("/v1/notifications", data=sw(device, state), headers=ingest)).ok
    listed = await (await guarded.get("/v1/operations?stuck_for=0", headers=read)).json()
    assert [op["stuck"] for op in listed["items"]] == [2]
    later = await (await guarded.get("/v1/operations?stuck_for=3600", headers=read)).json()
    assert [op["stuck"] for op in later["items"]] == [0]
    plain = await (await guarded.get("/v1/operations", headers=read)).json()
    assert [op["stuck"] for op in plain["items"]] == [None]
    one = await (await guarded.get("/v1/operations/op-1?stuck_for=0", headers=read)).json()
    assert one["stuck"] == 2
    devices = await (
        await guarded.get("/v1/devices?operation_id=op-1&stuck_for=0", headers=read)
    ).json()
    assert len(devices["items"]) == one["stuck"]  # the count is of the devices listed there
    bad = await guarded.get("/v1/operations?stuck_for=-1", headers=read)
    assert bad.status == 400


async def test_refusals_newest_first_page_backwards(guarded: TestClient[Any, Any]) -> None:
    ingest = {"Authorization": f"Bearer {INGEST}"}
    read = {"Authorization": f"Bearer {READ}"}
    for n in range(5):
        body = json.dumps({"n": n, **json.loads(sw("d", "nope"))})
        assert (await guarded.post("/v1/notifications", data=body, headers=ingest)).status == 422
    first = await (await guarded.get("/v1/rejected?order=newest&limit=3", headers=read)).json()
    ids = [item["id"] for item in first["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    cursor = first["next_cursor"]
    rest = await (
        await guarded.get(f"/v1/rejected?order=newest&limit=3&cursor={cursor}", headers=read)
    ).json()
    assert [item["id"] for item in rest["items"]] == [ids[-1] - 1, ids[-1] - 2]
    assert rest["next_cursor"] is None
    oldest = await (await guarded.get("/v1/rejected", headers=read)).json()
    assert [item["id"] for item in oldest["items"]] == sorted([*ids, ids[-1] - 1, ids[-1] - 2])


def sw_result(device: str, outcome: str, op: str = "op-1") -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeResultNotify",
            "deviceId": device,
            "appId": "app",
            "operationId": op,
            "subOperationId": "s",
            "swUpgradeResult": outcome,
            "errorCode": "E1" if outcome == "FAIL" else "0",
        }
    ).encode()


async def test_activity_and_invalid_moves_of_a_rollout(guarded: TestClient[Any, Any]) -> None:
    ingest = {"Authorization": f"Bearer {INGEST}"}
    read = {"Authorization": f"Bearer {READ}"}
    bodies = [
        sw("a", "downloading"),
        sw("a", "downloaded"),
        sw("b", "idle"),
        sw("b", "updating"),  # idle → updating: invalid
        sw("c", "downloading"),
        sw("c", "updating"),  # downloading → updating: invalid
        sw_result("a", "SUCCESS"),
        sw_result("c", "FAIL"),
        sw("z", "updating", op="op-2"),
    ]
    for body in bodies:
        assert (await guarded.post("/v1/notifications", data=body, headers=ingest)).ok
    answer = await (await guarded.get("/v1/operations/op-1/activity", headers=read)).json()
    assert answer["step"] == 1
    totals = {
        k: sum(item[k] for item in answer["items"])
        for k in ("reports", "invalid", "successes", "failures")
    }
    assert totals == {"reports": 6, "invalid": 2, "successes": 1, "failures": 1}
    minutes = [item["minute"] for item in answer["items"]]
    assert minutes == sorted(minutes)
    assert all(m.endswith((":00Z", ":00+00:00")) for m in minutes)
    coarse = await (await guarded.get("/v1/operations/op-1/activity?step=60", headers=read)).json()
    assert sum(item["reports"] for item in coarse["items"]) == 6
    assert len(coarse["items"]) <= len(answer["items"])

    moves = await (await guarded.get("/v1/operations/op-1/invalid-moves", headers=read)).json()
    assert [(m["device_id"], m["from_state"], m["to_state"]) for m in moves["items"]] == [
        ("b", "idle", "updating"),
        ("c", "downloading", "updating"),
    ]
    assert all(not m["valid"] for m in moves["items"])
    paged = await (
        await guarded.get("/v1/operations/op-1/invalid-moves?limit=1", headers=read)
    ).json()
    assert len(paged["items"]) == 1
    assert paged["next_cursor"] is not None
    for path in ("/v1/operations/none/activity", "/v1/operations/none/invalid-moves"):
        assert (await guarded.get(path, headers=read)).status == 404
    for step in ("0", "10081", "x", "1.5"):
        bad = await guarded.get(f"/v1/operations/op-1/activity?step={step}", headers=read)
        assert bad.status == 400, step
