"""Refuse requests whose path or query holds U+0000: no id can contain it (PostgreSQL text
cannot), and passing it on would turn a typo into a database error."""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.http.errors import ApiError


@web.middleware
async def refuse_nul(request: web.Request, handler: Handler) -> web.StreamResponse:
    if "\x00" in request.path or any("\x00" in k + v for k, v in request.query.items()):
        raise ApiError(
            400,
            "invalid_parameter",
            "the path or query contains U+0000, which no identifier can hold",
            [{"field": "path", "problem": "contains U+0000"}],
        )
    return await handler(request)
