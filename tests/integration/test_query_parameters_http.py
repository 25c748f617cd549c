"""Every route parses the query model the route table documents: each documented parameter
that can be wrong is refused, with a 400 naming it, before anything is looked up."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tracker.http.parameters import TEXT
from tracker.http.routes import ROUTES

# A text every parameter refuses, except free text: not a digit, a choice, a number, a cursor
# (not base64) nor a time.
WRONG = "\u00b2"


async def test_every_documented_parameter_that_can_be_wrong_is_refused(
    client: TestClient[Any, Any],
) -> None:
    checked = [
        (op.method, op.path, name)
        for op in ROUTES
        for name, field in op.query.model_fields.items()
        if TEXT not in field.metadata
    ]
    assert len(checked) >= 30
    assert {path for _, path, _ in checked} >= {"/v1/events", "/v1/devices", "/v1/stream"}
    wrong = {}
    for method, path, name in checked:
        concrete = re.sub(r"\{\w+\}", "unknown", path)  # refused before the lookup: no 404
        response = await client.request(method, concrete, params={name: WRONG})
        body = await response.json() if response.content_type == "application/json" else None
        error = body.get("error", {}) if isinstance(body, dict) else {}
        if (response.status, error.get("code"), error.get("details")) != (
            400,
            "invalid_parameter",
            [{"field": name, "problem": error.get("message")}],
        ):
            wrong[f"{method} {path} ?{name}"] = (response.status, body)
    assert wrong == {}
