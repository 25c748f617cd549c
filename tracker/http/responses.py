"""JSON answers, serialised with orjson (datetimes as RFC 3339)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_ok(document: Any, status: int = 200) -> web.Response:  # noqa: ANN401 - any JSON document
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")


def page(items: list[Any], next_cursor: str | None) -> web.Response:
    return json_ok({"items": items, "next_cursor": next_cursor})
