"""Batch task times at the ends of the calendar, over the real HTTP ingest: refused with a 422
naming the field (and kept in `rejected`), never a 500, and never poisoning the task for the
deliveries after them. Rows an older version wrote with -infinity or infinity still fold."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.support.task_bodies import task_body


async def post(client: TestClient[Any, Any], raw: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/notifications", data=raw, headers={"Content-Type": "application/json"}
    )
    body: dict[str, Any] = await response.json()
    return response.status, body


async def task_of(client: TestClient[Any, Any], task_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/tasks/{task_id}")
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def transitions_of(client: TestClient[Any, Any], task_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/tasks/{task_id}/transitions")
    assert response.status == 200, await response.text()
    items: list[dict[str, Any]] = (await response.json())["items"]
    return items


OUT_OF_RANGE = [
    ("event_time_ms", "0001-01-01T00:00:00Z"),
    ("event_time", "0001-01-01T00:00:00Z"),
    ("event_time", "00010101T000000Z"),
    ("event_time_ms", "0001-01-01T00:00:00+14:00"),
    ("event_time", "9999-12-31T23:59:59-14:00"),
    ("event_time_ms", "9999-12-31T23:59:59+14:00"),
    ("event_time_ms", "9999-12-31T23:59:59.999999Z"),
    ("event_time_ms", "1969-12-31T23:59:59.999Z"),
    ("event_time_ms", "9999-12-30T00:00:00.001Z"),
]


@pytest.mark.parametrize("status", ["Waitting", "Processing"])
@pytest.mark.parametrize(("field", "sent"), OUT_OF_RANGE, ids=[t for _, t in OUT_OF_RANGE])
async def test_a_time_out_of_range_is_a_422_and_the_task_goes_on(
    client: TestClient[Any, Any], field: str, sent: str, status: str
) -> None:
    refused = task_body("t1", status, **{field: sent})
    answered, body = await post(client, refused)
    assert answered == 422, body
    assert body["error"]["code"] == "schema_violation"
    assert [d["field"] for d in body["error"]["details"]] == [field]
    assert "1970-01-01T00:00:00Z" in body["error"]["message"]
    kept = (await (await client.get("/v1/rejected")).json())["items"]
    assert [(r["status"], r["body"]) for r in kept] == [(422, refused.decode())]

    # Then the same task's deliveries are taken and projected as if it had never come.
    for at, then in (("2026-11-27T01:02:03.000Z", status), ("2026-11-27T01:05:00.000Z", "Fail")):
        answered, body = await post(client, task_body("t1", then, event_time_ms=at))
        assert answered == 200, body
    found = await task_of(client, "t1")
    assert (found["status"], found["event_time"]) == ("Fail", "2026-11-27T01:05:00.000Z")


@pytest.mark.parametrize(
    ("sent", "shown", "stored"),
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z", "1970-01-01 00:00:00+00"),
        ("19700101T140000+1400", "1970-01-01T00:00:00.000Z", "1970-01-01 00:00:00+00"),
        ("9999-12-30T00:00:00.000Z", "9999-12-30T00:00:00.000Z", "9999-12-30 00:00:00+00"),
        ("9999-12-29T10:00:00-14:00", "9999-12-30T00:00:00.000Z", "9999-12-30 00:00:00+00"),
    ],
)
async def test_the_ends_of_the_range_are_stored_exactly(
    client: TestClient[Any, Any], database_url: str, sent: str, shown: str, stored: str
) -> None:
    answered, body = await post(client, task_body("edge", "Processing", event_time=sent))
    assert answered == 200, body
    assert (await task_of(client, "edge"))["event_time"] == shown
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT event_time::text AS t, isfinite(event_time) AS finite, "
            "isfinite(first_run_at) AS run_finite FROM tasks WHERE task_id = 'edge'"
        )
        occurred = await conn.fetchval("SELECT isfinite(occurred_at) FROM events")
    finally:
        await conn.close()
    assert row is not None
    assert (row["t"], row["finite"], row["run_finite"], occurred) == (stored, True, True, True)
    # A later delivery of the same task compares with it: 200 either way.
    answered, body = await post(client, task_body("edge", "Success", event_time_ms=sent))
    assert answered == 200, body


@pytest.mark.parametrize(
    ("infinity", "status", "applied"),
    [("-infinity", "Success", True), ("infinity", "Processing", False)],
)
async def test_a_row_an_older_version_left_at_infinity_still_takes_deliveries(
    client: TestClient[Any, Any], database_url: str, infinity: str, status: str, applied: bool
) -> None:
    """Before this check, a year-1 (or last-instant) event was accepted and its task row held
    -infinity (infinity): every later delivery for the task was a 500 (TypeError comparing
    the naive time asyncpg reads back with an aware one). Such a row is made here as that
    version left it; what follows -infinity applies, what follows infinity arrives late."""
    answered, _ = await post(
        client, task_body("old", "Processing", event_time_ms="2026-01-01T00:00:00.000Z")
    )
    assert answered == 200
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE tasks SET event_time = $1::text::timestamptz, "
            "first_run_at = $1::text::timestamptz, "
            "latest = jsonb_set(latest, '{0,event_time}', to_jsonb($2::text))",
            infinity,
            "0001-01-01T00:00:00+00:00"
            if infinity == "-infinity"
            else "9999-12-31T23:59:59.999999+00:00",
        )
    finally:
        await conn.close()
    before = await task_of(client, "old")  # a row at ±infinity is shown, not a 500
    shown = "0001-01-01T00:00:00.000Z" if infinity == "-infinity" else "9999-12-31T23:59:59.999Z"
    assert before["event_time"] == shown

    answered, body = await post(
        client, task_body("old", "Success", event_time_ms="2026-11-27T01:02:03.000Z")
    )
    assert answered == 200, body
    assert (await task_of(client, "old"))["status"] == status
    last = (await transitions_of(client, "old"))[-1]
    assert (last["to_status"], last["applied"]) == ("Success", applied)
    assert json.dumps(last)  # the history reads back too
