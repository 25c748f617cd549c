"""Bearer tokens: one for ingest, one for reads; not interchangeable, compared in constant time.

Who may call a route is decided by the route table alone (`Route.guard` in routes.py, kept
by `setup_routes` in `GUARDS`): a route the table does not declare (an unknown path, a route
added by other means) needs the read token, so nothing is open by omission.

IoTDA's HTTP push can be given only a URL, so the ingest token may also travel as `?token=`.
The dashboard's session cookie (http/session.py) stands for the read token, and for nothing else.
The admin token (`TRACKER_ADMIN_TOKEN`) writes guards, and reads whatever the read token reads;
unset, nobody writes guards (403), and no other token ever does (403: known, not allowed).
It is taken from the Authorization header alone, on every route: a URL is kept by browsers,
proxies and logs, so the admin token in `?token=` is a wrong token (401, and counted).
A client that presents too many wrong tokens is told to wait (429) before any is compared
(http/attempts.py).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import Field

from tracker.config import Settings
from tracker.http.attempts import ATTEMPTS, client_of
from tracker.http.errors import ApiError
from tracker.http.keys import SETTINGS
from tracker.http.parameters import TEXT, Query
from tracker.http.session import signed_in
from tracker.metrics import REJECTED

Guard = Literal["ingest", "read", "metrics", "admin", "open"]
GUARDS = web.AppKey("guards", dict[AbstractRoute, Guard])  # every route's, from the table


class TokenQuery(Query):
    """`?token=`, on any guarded route; documented where a header may be out of reach (ingest)."""

    token: Annotated[
        str | None,
        TEXT,
        Field(description="the ingest token, for platforms that cannot send headers"),
    ] = None


def presented_token(request: web.Request) -> tuple[str | None, bool]:
    """The token presented, and whether it came in the URL (`?token=`, read only without a
    Bearer header), where the admin token is never taken."""
    header = bearer(request)
    if header is not None:
        return header, False
    return TokenQuery.of(request).token, True


def bearer(request: web.Request) -> str | None:
    """The Authorization header's Bearer token: the only way the admin token is taken (a URL
    is kept by browsers, proxies and logs)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def is_admin(request: web.Request) -> bool:
    """Whether the admin token came with the request (as a header: no other way counts)."""
    expected = request.app[SETTINGS].admin_token
    return expected is not None and _matches(bearer(request), expected)


def _matches(presented: str | None, expected: str) -> bool:
    # compare_digest on bytes: constant time in the length of the expected token. Header bytes
    # that are not UTF-8 reach us as surrogate escapes; encoded back the same way they are the
    # bytes that were sent, which simply do not match.
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode())


def guard_of(request: web.Request) -> Guard:
    return request.app[GUARDS].get(request.match_info.route, "read")


def _refuse_if_over_budget(request: web.Request, guard: Guard) -> None:
    """429 before any comparison for a client past its budget of wrong tokens."""
    try:
        request.app[ATTEMPTS].check(client_of(request))
    except ApiError as refused:
        if guard == "ingest":
            REJECTED.labels(refused.code).inc()
        raise


def _accepted(guard: Guard, settings: Settings, *, in_url: bool) -> list[str]:
    """The tokens that pass `guard`; none: it is open (its own token is unset). The admin token
    passes every read, but only from the header (`in_url`: the token came as `?token=`), and
    alone it closes none."""
    if guard == "ingest":
        return [t for t in [settings.ingest_token] if t is not None]
    own = (
        [settings.metrics_token, settings.read_token]
        if guard == "metrics"
        else [settings.read_token]
    )
    tokens = [t for t in own if t is not None]
    admin = None if in_url else settings.admin_token
    return [*tokens, admin] if tokens and admin else tokens


@web.middleware
async def require_tokens(request: web.Request, handler: Handler) -> web.StreamResponse:
    guard = guard_of(request)
    if guard == "open":
        return await handler(request)
    settings = request.app[SETTINGS]
    if guard == "admin":
        return await _admin_only(request, handler)
    presented, in_url = presented_token(request)
    tokens = _accepted(guard, settings, in_url=in_url)
    if tokens and presented is not None:
        _refuse_if_over_budget(request, guard)
    if tokens and not any([_matches(presented, token) for token in tokens]):  # noqa: C419 - all compared
        if presented is not None:  # a guess; a cookie alone is not one (its MAC is unguessable)
            request.app[ATTEMPTS].failed(client_of(request))
        if guard == "read" and await signed_in(request):
            return await handler(request)
        if guard == "ingest":
            REJECTED.labels("unauthorized").inc()
        raise ApiError(
            401,
            "unauthorized",
            f"missing or wrong {guard} token: "
            "send 'Authorization: Bearer <token>' or add ?token=<token> to the URL",
            headers={"WWW-Authenticate": 'Bearer realm="tracker"'},
        )
    return await handler(request)


async def _admin_only(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The admin token from the header, and nothing else: closed when it is unset. In the URL
    it is a wrong token like any other (401, counted); the others are known there too (403)."""
    settings = request.app[SETTINGS]
    if settings.admin_token is None:
        raise ApiError(
            403,
            "admin_disabled",
            "guards cannot be written here: TRACKER_ADMIN_TOKEN is not set on the server",
        )
    presented, in_url = presented_token(request)
    if presented is not None:
        _refuse_if_over_budget(request, "admin")
    if _matches(presented, settings.admin_token) and not in_url:
        return await handler(request)
    others = [settings.ingest_token, settings.read_token, settings.metrics_token]
    if any([_matches(presented, token) for token in others if token is not None]):  # noqa: C419
        raise ApiError(403, "forbidden", "this token cannot write guards: send the admin token")
    if presented is not None:
        request.app[ATTEMPTS].failed(client_of(request))
    raise ApiError(
        401,
        "unauthorized",
        "missing or wrong admin token: send 'Authorization: Bearer <TRACKER_ADMIN_TOKEN>'",
        headers={"WWW-Authenticate": 'Bearer realm="tracker"'},
    )
