"""The dashboard's sign-in: the read token, presented once, becomes an HttpOnly cookie that the
read API accepts in its place.

The cookie does not hold the token. It holds an expiry and an HMAC of it keyed by the read token,
so it is worth nothing elsewhere, every worker and host can check it without shared state, and
changing TRACKER_READ_TOKEN signs everyone out. HttpOnly keeps it from scripts, SameSite=Strict
from other sites' requests (there is no other CSRF surface: the cookie opens reads only), Secure
under TLS. The ingest token never opens a session: the platform's token reads nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import orjson
from aiohttp import web

from tracker.http.body import read_whole
from tracker.http.errors import ApiError
from tracker.http.keys import SETTINGS

COOKIE = "tracker_session"
LIFETIME = 12 * 3600  # seconds: a working day, then sign in again
WRONG_TOKEN_PAUSE = 0.5  # seconds before a refusal: guessing costs time
_PURPOSE = b"tracker dashboard session, expires "


def issue(read_token: str, now: float) -> str:
    expires = int(now) + LIFETIME
    return f"{expires}.{_mac(read_token, expires)}"


def valid(cookie: str | None, read_token: str, now: float) -> bool:
    """Whether `cookie` was issued under `read_token` and has not expired."""
    if not cookie:
        return False
    expires, _, mac = cookie.partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12 or int(expires) <= now:
        return False
    expected = _mac(read_token, int(expires))
    return hmac.compare_digest(mac.encode("utf-8", "surrogateescape"), expected.encode())


def _mac(read_token: str, expires: int) -> str:
    message = _PURPOSE + str(expires).encode()
    return hmac.new(read_token.encode(), message, hashlib.sha256).hexdigest()


def signed_in(request: web.Request) -> bool:
    token = request.app[SETTINGS].read_token
    return token is not None and valid(request.cookies.get(COOKIE), token, time.time())


async def get_session(request: web.Request) -> web.Response:
    """Whether the dashboard must ask for the read token, and whether this browser holds a
    session; the dashboard asks before it reads anything."""
    required = request.app[SETTINGS].read_token is not None
    return _json({"required": required, "signed_in": not required or signed_in(request)})


async def sign_in(request: web.Request) -> web.Response:
    """`{"token": "<read token>"}` as JSON (a form from another site cannot send that without
    CORS, which we never grant); a session cookie back."""
    token = request.app[SETTINGS].read_token
    if request.content_type != "application/json":
        raise ApiError(400, "not_json", 'send {"token": "<read token>"} as application/json')
    try:
        document = orjson.loads(await read_whole(request, limit=4096))  # {"token": ...}
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None
    presented = document.get("token") if isinstance(document, dict) else None
    if not isinstance(presented, str):
        raise ApiError(400, "no_token", 'send {"token": "<read token>"}')
    if token is None:
        return _json({"required": False, "signed_in": True})
    if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode()):
        await asyncio.sleep(WRONG_TOKEN_PAUSE)
        raise ApiError(401, "unauthorized", "that is not the read token")
    response = _json({"required": True, "signed_in": True})
    response.set_cookie(
        COOKIE,
        issue(token, time.time()),
        max_age=LIFETIME,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    response = _json({"required": request.app[SETTINGS].read_token is not None, "signed_in": False})
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=request.secure)
    return response


def _json(document: dict[str, bool]) -> web.Response:
    return web.Response(
        body=orjson.dumps(document),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
