"""Crafted cursors on every paginated endpoint: a 400 with our JSON error, never a 500.

A cursor is the client's text. Each endpoint's keyset is described here by the kinds of its
values; every value of every kind is replaced in turn by what that kind must refuse (wrong
types, times outside the range the store keeps, integers past bigint, ids no notification could
carry), and the arity and the encoding are broken too. A well-formed cursor of the same shape
is 200, so the table matches what the endpoints really take.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.support.task_bodies import task_body
from tracker.http.routes import ROUTES

# One value of a keyset, as the endpoint's cursor holds it: a well-formed example, and what
# must be refused in its place.
NOT_A_POSITION: list[object] = [None, 1.5, True, "1", {"a": 1}, [1], -1, 2**63, 10**40]
NOT_AN_ID: list[object] = [None, 1, True, {"a": "b"}, ["a"], "", "x" * 257, "a\u0000b"]
NOT_A_TIME: list[object] = [
    None,
    1,
    "",
    "yesterday",
    "2026-11-27T01:02:03",  # no zone
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC (was a 500)
    "9999-12-31T23:59:59-14:00",  # past year 9999 in UTC (was a 500)
    "0001-01-01T00:00:00Z",  # -infinity in the database
    "1969-12-31T23:59:59Z",
    "9999-12-31T00:00:00Z",
    {"at": "2026-11-27T01:02:03Z"},
]
NOT_A_TRACK: list[object] = [None, 1, "", "hardware", "Software", ["software"]]
KINDS: dict[str, tuple[object, list[object]]] = {
    "position": (1, NOT_A_POSITION),
    "id": ("d", NOT_AN_ID),
    "time": ("2026-11-27T01:02:03+00:00", NOT_A_TIME),
    "track": ("software", NOT_A_TRACK),
}

# Every paginated endpoint (each variant whose keyset differs), with its keyset's kinds.
ENDPOINTS: dict[str, tuple[str, ...]] = {
    "/v1/events": ("position",),
    "/v1/rejected": ("position",),
    "/v1/rejected?order=newest": ("position",),
    "/v1/devices": ("id",),
    "/v1/devices?track=firmware&state=idle": ("id",),
    "/v1/devices?stuck_for=0": ("time", "id"),
    "/v1/devices/d/transitions": ("position",),
    "/v1/operations": ("time", "id", "track"),
    "/v1/operations?stuck_for=60": ("time", "id", "track"),
    "/v1/operations/o/devices": ("id", "track"),
    "/v1/operations/o/invalid-moves": ("position",),
    "/v1/tasks": ("id",),
    "/v1/tasks/t/transitions": ("position",),
    "/v1/alerts": ("time", "id", "id", "track"),
    "/v1/alerts?state=firing": ("time", "id", "id", "track"),
    "/v1/webhooks/dead": ("position",),
}


def encoded(document: object) -> str:
    """A cursor as this server writes one: URL-safe base64 of JSON, without padding."""
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def well_formed(kinds: tuple[str, ...]) -> object:
    values = [KINDS[k][0] for k in kinds]
    return values[0] if len(values) == 1 else values


def crafted(kinds: tuple[str, ...]) -> dict[str, str]:
    """Every cursor the endpoint must refuse, by a name that says what is wrong with it."""
    good = [KINDS[k][0] for k in kinds]
    cursors = {
        "not base64": "%%%not base64%%%",
        "empty": "",
        "base64 of no JSON": base64.urlsafe_b64encode(b"\xff\xfe{").decode(),
        "a JSON list": encoded([good]),
        "a JSON string": encoded("after"),
        "no after": encoded({"before": well_formed(kinds)}),
        "after null": encoded({"after": None}),
        "after nested": encoded({"after": {"after": well_formed(kinds)}}),
        "one value too many": encoded({"after": [*good, good[-1]]}),
        "a lone surrogate": base64.urlsafe_b64encode(b'{"after": "\\ud800"}').decode(),
    }
    if len(good) > 1:
        cursors["one value too few"] = encoded({"after": good[:-1]})
        cursors["a bare value"] = encoded({"after": good[0]})
    for i, kind in enumerate(kinds):
        for bad in KINDS[kind][1]:
            values = [*good[:i], bad, *good[i + 1 :]]
            cursors[f"{kind} #{i} = {json.dumps(bad)[:40]}"] = encoded(
                {"after": values[0] if len(values) == 1 else values}
            )
    return cursors


def with_cursor(path: str, cursor: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}cursor={cursor}"


def test_the_table_names_every_paginated_endpoint() -> None:
    paginated = {op.path for op in ROUTES if "cursor" in op.query.model_fields}
    named = {path.split("?")[0].replace("/d/", "/{device_id}/") for path in ENDPOINTS}
    named = {p.replace("/o/", "/{operation_id}/").replace("/t/", "/{task_id}/") for p in named}
    assert named == paginated


async def seed(client: TestClient[Any, Any]) -> None:
    """A device `d` in operation `o`, a task `t` and a refusal: every list has its subject."""
    device = {
        "notifyType": "swUpgradeStateChangeNotify",
        "deviceId": "d",
        "appId": "a",
        "operationId": "o",
        "subOperationId": "s",
        "swUpgradeState": "downloading",
    }
    for raw in (
        json.dumps(device).encode(),
        task_body("t", event_time_ms="2026-11-27T01:02:03.000Z"),
        b"not json",
    ):
        await client.post("/v1/notifications", data=raw)


@pytest.mark.parametrize(("path", "kinds"), list(ENDPOINTS.items()), ids=list(ENDPOINTS))
async def test_every_crafted_cursor_is_a_400_never_a_500(
    client: TestClient[Any, Any], path: str, kinds: tuple[str, ...]
) -> None:
    await seed(client)
    fine = await client.get(with_cursor(path, encoded({"after": well_formed(kinds)})))
    assert fine.status == 200, await fine.text()

    wrong = {}
    cursors = crafted(kinds)
    for name, cursor in cursors.items():
        response = await client.get(with_cursor(path, cursor))
        body = await response.json() if response.content_type == "application/json" else None
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if (response.status, error.get("code"), error.get("details")) != (
            400,
            "invalid_parameter",
            [{"field": "cursor", "problem": error.get("message")}],
        ):
            wrong[name] = (response.status, body)
    assert wrong == {}, f"{len(wrong)} of {len(cursors)} cursors not refused"
    assert len(cursors) >= 18
