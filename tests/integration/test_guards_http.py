"""Guards through the HTTP API, on a real server with a real PostgreSQL and a real webhook
receiver: who may write them, what a definition may be, and an alert that fires once and
resolves once however many deliveries keep it where it is, signed, and reproduced by replay."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker
from tests.support.receiver import Receiver
from tests.support.waiting import until
from tracker.store.database import Database
from tracker.webhooks.signing import SIGNATURE, verify

INGEST, READ, ADMIN = "guards-ingest-token", "guards-read-token-x", "guards-admin-token-x"
SECRET = "whsec-guards-test-0123"
Client = TestClient[Any, Any]


async def server(make_client: MakeClient, **overrides: Any) -> Client:
    settings = {
        "ingest_token": INGEST,
        "read_token": READ,
        "admin_token": ADMIN,
        "webhook_hosts": "127.0.0.1",
        **overrides,
    }
    return await make_client(**settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def definition(url: str | None = None, **when: object) -> dict[str, Any]:
    document: dict[str, Any] = {"scope": {"app_id": "app-1"}, "when": when or {"failed_above": 2}}
    if url is not None:
        document["webhook"] = {"url": url, "secret": SECRET}
    return document


async def result(client: Client, device: str, outcome: str, sub: str, op: str = "op-1") -> None:
    body = {
        "notifyType": "swUpgradeResultNotify",
        "deviceId": device,
        "appId": "app-1",
        "operationId": op,
        "subOperationId": sub,
        "swUpgradeResult": outcome,
        "errorCode": "E42" if outcome == "FAIL" else "0",
        "resultDesc": "timeout" if outcome == "FAIL" else "ok",
    }
    answer = await client.post("/v1/notifications", json=body, headers=bearer(INGEST))
    assert answer.status == 200, await answer.text()


async def alerts(client: Client, query: str = "") -> list[dict[str, Any]]:
    answer = await client.get(f"/v1/alerts{query}", headers=bearer(READ))
    assert answer.status == 200, await answer.text()
    items: list[dict[str, Any]] = (await answer.json())["items"]
    return items


async def test_only_the_admin_token_writes_guards(make_client: MakeClient) -> None:
    closed = await server(make_client, admin_token=None)
    answer = await closed.put("/v1/guards/g", json=definition(), headers=bearer(READ))
    assert (answer.status, (await answer.json())["error"]["code"]) == (403, "admin_disabled")

    client = await server(make_client)
    for headers, status in [
        ({}, 401),
        (bearer("not-a-token-of-ours-at-all"), 401),
        (bearer(READ), 403),
        (bearer(INGEST), 403),
    ]:
        answer = await client.put("/v1/guards/g", json=definition(), headers=headers)
        assert answer.status == status, (headers, await answer.text())
    # Never from the URL, where browsers, proxies and logs keep it.
    answer = await client.put(f"/v1/guards/g?token={ADMIN}", json=definition())
    assert answer.status == 401
    assert (await client.get("/v1/guards", headers=bearer(READ))).status == 200
    assert (await (await client.get("/v1/guards", headers=bearer(READ))).json())["items"] == []

    created = await client.put("/v1/guards/g", json=definition(), headers=bearer(ADMIN))
    assert created.status == 201
    replaced = await client.put(
        "/v1/guards/g", json=definition(failed_above=5), headers=bearer(ADMIN)
    )
    assert replaced.status == 200
    assert (await replaced.json())["when"] == {"failed_above": 5}
    assert (await client.delete("/v1/guards/g", headers=bearer(READ))).status == 403
    assert (await client.delete("/v1/guards/g", headers=bearer(ADMIN))).status == 204
    assert (await client.delete("/v1/guards/g", headers=bearer(ADMIN))).status == 404
    assert (await client.get("/v1/guards/g", headers=bearer(READ))).status == 404


async def test_the_secret_is_kept_and_never_shown(
    make_client: MakeClient, database: Database, receiver: Receiver
) -> None:
    client = await server(make_client)
    put = await client.put(
        "/v1/guards/g", json=definition(receiver.url("/hook")), headers=bearer(ADMIN)
    )
    assert put.status == 201
    shown = [
        await put.text(),
        await (await client.get("/v1/guards/g", headers=bearer(READ))).text(),
        await (await client.get("/v1/guards", headers=bearer(ADMIN))).text(),
    ]
    assert all(SECRET not in text for text in shown)
    # The URL whole to the admin token; to the read token where it goes, not its path (a
    # webhook URL often carries a credential).
    assert json.loads(shown[2])["items"][0]["webhook"] == {
        "url": receiver.url("/hook"),
        "secret_set": True,
    }
    assert json.loads(shown[1])["webhook"] == {"url": f"{receiver.base}/…", "secret_set": True}
    assert "/hook" not in shown[1]
    stored = await database.fetch("guards", "SELECT definition::text AS d FROM guards")
    assert SECRET not in stored[0]["d"]


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/guards/-leading-dash", definition(), 400, "name"),
        ("/v1/guards/g", b"{not json", 400, None),
        ("/v1/guards/g", {"when": {"failed_above": 2, "min_results": 3}}, 422, "when"),
        ("/v1/guards/g", {"when": {"failure_rate_above": 1.5}}, 422, "when"),
        ("/v1/guards/g", {"when": {"nothing_above": 1}}, 422, "when"),
        ("/v1/guards/g", {"scope": {"region": "eu"}, "when": {"failed_above": 1}}, 422, "scope"),
        ("/v1/guards/g", {"when": {"silent_for": 0}}, 422, "when"),
        (
            "/v1/guards/g",
            {"when": {"failed_above": 1}, "webhook": {"url": "http://127.0.0.1/x", "secret": "s"}},
            422,
            "webhook",
        ),
    ],
)
async def test_a_definition_is_refused_with_what_is_wrong(
    make_client: MakeClient, path: str, body: object, status: int, field: str | None
) -> None:
    client = await server(make_client)
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = await client.put(path, data=data, headers=bearer(ADMIN))
    assert answer.status == status, await answer.text()
    error = (await answer.json())["error"]
    if field is not None:
        assert any(d["field"].startswith(field) for d in error["details"]), error


@pytest.mark.parametrize(
    ("url", "hosts", "why"),
    [
        ("http://10.1.2.3/hook", None, "10.1.2.3"),  # private
        ("http://127.0.0.1:9/hook", None, "127.0.0.1"),  # loopback
        ("http://169.254.169.254/latest/meta-data", None, "169.254.169.254"),  # cloud metadata
        ("http://[::1]/hook", None, "::1"),
        ("ftp://hooks.example.com/x", None, "http"),
        ("http://hooks.example.com/x", "127.0.0.1", "TRACKER_WEBHOOK_HOSTS"),
    ],
)
async def test_a_webhook_outside_the_allowed_targets_is_refused(
    make_client: MakeClient, url: str, hosts: str | None, why: str
) -> None:
    client = await server(make_client, webhook_hosts=hosts)
    answer = await client.put(
        "/v1/guards/g",
        json={"when": {"failed_above": 1}, "webhook": {"url": url, "secret": SECRET}},
        headers=bearer(ADMIN),
    )
    assert answer.status == 422, await answer.text()
    error = (await answer.json())["error"]
    assert error["code"] == "webhook_refused"
    assert why in error["message"]


async def test_stop_task_needs_iotda_credentials(make_client: MakeClient) -> None:
    client = await server(make_client)
    body = {"scope": {"platform": "iotda"}, "when": {"failed_above": 1}, "stop_task": True}
    answer = await client.put("/v1/guards/g", json=body, headers=bearer(ADMIN))
    assert (answer.status, (await answer.json())["error"]["code"]) == (
        422,
        "stop_task_unavailable",
    )


async def test_a_rollout_crossing_fires_one_signed_webhook_and_resolving_one_more(
    make_client: MakeClient, database: Database, receiver: Receiver, database_url: str
) -> None:
    client = await server(make_client)
    put = await client.put(
        "/v1/guards/too-many-failures",
        json=definition(receiver.url("/hook"), failed_above=2),
        headers=bearer(ADMIN),
    )
    assert put.status == 201
    for n in range(2):
        await result(client, f"d-{n}", "FAIL", f"s-{n}")
    assert await alerts(client) == []  # 2 failed: not above 2
    for n in range(2, 6):  # the third crosses; the rest keep it firing
        await result(client, f"d-{n}", "FAIL", f"s-{n}")
    await result(client, "d-5", "FAIL", "s-5")  # the platform's retry of the same delivery
    await until(lambda: len(receiver.hits) >= 1, "the firing webhook")

    firing = await alerts(client, "?state=firing")
    assert len(firing) == 1
    assert firing[0] | {"fired_at": None} == {
        "id": "too-many-failures:op-1:software:1",
        "guard": "too-many-failures",
        "operation_id": "op-1",
        "track": "software",
        "app_id": "app-1",
        "platform": "oceanconnect",
        "state": "firing",
        "value": 3.0,  # the reading when it crossed, not the 6 failed since
        "threshold": 2.0,
        "fired_at": None,
        "resolved_at": None,
        "changes": 1,
        "new_codes": [],
        "stop": None,
    }
    hit = receiver.hits[0]
    assert verify(SECRET.encode(), hit.body, hit.headers[SIGNATURE])
    body = json.loads(hit.body)
    assert {k: body[k] for k in ("id", "guard", "operation_id", "state", "value", "threshold")} == {
        "id": "too-many-failures:op-1:software:1",
        "guard": "too-many-failures",
        "operation_id": "op-1",
        "state": "firing",
        "value": 3.0,
        "threshold": 2.0,
    }
    assert body["at"] == firing[0]["fired_at"]

    for n in range(4):  # four devices succeed on a second try: 2 failed, not above 2
        await result(client, f"d-{n}", "SUCCESS", f"t-{n}")
    await until(lambda: len(receiver.hits) >= 2, "the resolving webhook")
    resolved = json.loads(receiver.hits[1].body)
    assert (resolved["id"], resolved["state"], resolved["value"]) == (
        "too-many-failures:op-1:software:2",
        "resolved",
        2.0,
    )
    assert verify(SECRET.encode(), receiver.hits[1].body, receiver.hits[1].headers[SIGNATURE])
    assert await alerts(client, "?state=firing") == []
    [alert] = await alerts(client, "?operation_id=op-1")
    assert (alert["state"], alert["changes"], alert["resolved_at"] is not None) == (
        "resolved",
        2,
        True,
    )
    await result(client, "d-4", "SUCCESS", "t-4")  # further from the threshold: nothing new

    # Replay rebuilds the alerts from the log, compares equal, and sends nothing again.
    outbox_before = await database.fetch("outbox", "SELECT id FROM webhook_outbox ORDER BY id")
    check = tracker(database_url, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "1 alerts" in check.stdout
    rebuilt = tracker(database_url, "replay")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert await alerts(client) == [alert]
    assert await database.fetch("outbox", "SELECT id FROM webhook_outbox ORDER BY id") == (
        outbox_before
    )
    assert len(receiver.hits) == 2
