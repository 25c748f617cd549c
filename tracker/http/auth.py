"""Bearer tokens: one for ingest, one for reads; not interchangeable, compared in constant time.

IoTDA's HTTP push can be given only a URL, so the ingest token may also travel as `?token=`.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.http.errors import ApiError
from tracker.http.keys import SETTINGS
from tracker.metrics import REJECTED

INGEST_PATH = "/v1/notifications"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def presented_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token")


def _matches(presented: str | None, expected: str) -> bool:
    # compare_digest on bytes: constant time in the length of the expected token.
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


@web.middleware
async def require_tokens(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.path == INGEST_PATH:
        expected, which = settings.ingest_token, "ingest"
    elif request.path in OPEN_PATHS:
        expected, which = None, ""
    else:
        expected, which = settings.read_token, "read"
    if expected is not None and not _matches(presented_token(request), expected):
        if which == "ingest":
            REJECTED.labels("unauthorized").inc()
        raise ApiError(
            401,
            "unauthorized",
            f"missing or wrong {which} token: "
            "send 'Authorization: Bearer <token>' or add ?token=<token> to the URL",
            headers={"WWW-Authenticate": 'Bearer realm="tracker"'},
        )
    return await handler(request)
