"""Ingest and read tokens: header or URL, constant-time, and not interchangeable."""

from __future__ import annotations

import pytest

INGEST, READ = "ingest-secret-1", "read-secret-2"


@pytest.fixture
async def guarded(make_client):
    return await make_client(ingest_token=INGEST, read_token=READ)


async def test_ingest_accepts_a_bearer_header_or_a_url_token(guarded, examples):
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
async def test_ingest_refuses_a_missing_wrong_or_read_token(guarded, examples, headers, query):
    response = await guarded.post(
        f"/v1/notifications{query}", data=examples["iotda-batchtask-update"], headers=headers
    )
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.json())["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("path", ["/v1/events", "/v1/rejected", "/v1/events/1/raw"])
async def test_reads_need_the_read_token_not_the_ingest_token(guarded, path):
    assert (await guarded.get(path)).status == 401
    assert (await guarded.get(path, headers={"Authorization": f"Bearer {INGEST}"})).status == 401
    assert (await guarded.get(f"{path}?token={INGEST}")).status == 401
    assert (await guarded.get(path, headers={"Authorization": f"Bearer {READ}"})).status in {
        200,
        404,
    }


async def test_probes_need_no_token(guarded):
    assert (await guarded.get("/healthz")).status == 200
    assert (await guarded.get("/readyz")).status == 200


async def test_refused_deliveries_are_not_stored_when_unauthenticated(guarded):
    assert (await guarded.post("/v1/notifications", data=b"junk")).status == 401
    rejected = await guarded.get("/v1/rejected", headers={"Authorization": f"Bearer {READ}"})
    assert (await rejected.json())["items"] == []
