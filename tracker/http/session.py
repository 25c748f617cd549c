"""The dashboard's sign-in: the read token, presented once, opens a session that the read API
accepts in the token's place, carried by an HttpOnly cookie.

The session is a row in the database (tracker/store/sessions.py), so it can be ended: sign-out
revokes it, `tracker sessions revoke` ends one or all, and every worker and host sees that at
the next request (nothing about a session is cached here). The cookie names the row and is
signed with a random secret from the database, never with the read token
(http/session_cookie.py): a stolen cookie cannot be used to test guesses of the token offline.
Changing TRACKER_READ_TOKEN ends every session: a row keeps a digest of the token it was opened
under, and a server holding another token does not find it live.

HttpOnly keeps the cookie from scripts, SameSite=Strict from other sites' requests (there is no
other CSRF surface: the cookie opens reads only), Secure under TLS, including TLS ended by a
proxy we trust (`--trust-proxy`). The ingest token never opens a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson
from aiohttp import web

from tracker.http.attempts import ATTEMPTS, client_of
from tracker.http.body import read_whole
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE, SETTINGS
from tracker.http.session_cookie import sign, token_digest, verified
from tracker.store import sessions
from tracker.store.database import Database
from tracker.store.errors import NotFound, Unavailable

COOKIE = "tracker_session"
LIFETIME = 12 * 3600  # seconds: a working day, then sign in again
# How often each process reads the secret again: a rotation (`tracker sessions revoke --all`)
# reaches every process within this. Revocations need no such delay: rows are read every time.
FOLLOW_SECONDS = 1.0


@dataclass(slots=True)
class SessionKeys:
    """This process's copy of the secret (followed), and the digest of its read token."""

    secret: bytes
    token_digest: bytes


SESSION_KEYS = web.AppKey("session_keys", SessionKeys)  # set only when a read token is


async def keep_session_keys(app: web.Application) -> AsyncIterator[None]:
    """Read the keys at start (after the database opened), then follow rotations."""
    read_token = app[SETTINGS].read_token
    if read_token is None:  # nothing to sign in to
        yield
        return
    database = app[DATABASE]
    keys = await sessions.keys(database)
    # scrypt, about 60 ms: off the event loop.
    digest = await asyncio.to_thread(token_digest, read_token, keys.token_salt)
    app[SESSION_KEYS] = held = SessionKeys(keys.secret, digest)
    follower = asyncio.create_task(_follow(database, held))
    yield
    follower.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await follower


async def _follow(database: Database, held: SessionKeys) -> None:
    while True:
        await asyncio.sleep(FOLLOW_SECONDS)
        with contextlib.suppress(Unavailable):  # already logged; keep the secret we have
            secret = await sessions.current_secret(database)
            if secret is not None:
                held.secret = secret


async def signed_in(request: web.Request) -> bool:
    """Whether the request's cookie names a live session, opened under this read token.

    The MAC is checked first, without the database: a request with a forged or mangled cookie
    costs one HMAC, and never a query."""
    if request.app[SETTINGS].read_token is None:
        return False
    held = request.app[SESSION_KEYS]
    signed = verified(request.cookies.get(COOKIE), held.secret, time.time())
    if signed is None:
        return False
    return await sessions.is_live(request.app[DATABASE], signed.session_id, held.token_digest)


async def get_session(request: web.Request) -> web.Response:
    """Whether the dashboard must ask for the read token, and whether this browser holds a
    session; the dashboard asks before it reads anything."""
    required = request.app[SETTINGS].read_token is not None
    return _json({"required": required, "signed_in": not required or await signed_in(request)})


async def sign_in(request: web.Request) -> web.Response:
    """`{"token": "<read token>"}` as JSON (a form from another site cannot send that without
    CORS, which we never grant); a session cookie back. Wrong tokens count against the client
    like wrong Bearer tokens (http/attempts.py)."""
    token = request.app[SETTINGS].read_token
    presented = await _presented(request)
    if token is None:
        return _json({"required": False, "signed_in": True})
    client = client_of(request)
    request.app[ATTEMPTS].check(client)
    if not hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), token.encode()):
        request.app[ATTEMPTS].failed(client)
        raise ApiError(401, "unauthorized", "that is not the read token")
    held = request.app[SESSION_KEYS]
    expires = int(time.time()) + LIFETIME
    session_id, held.secret = await sessions.open_session(
        request.app[DATABASE], held.token_digest, expires
    )
    response = _json({"required": True, "signed_in": True})
    response.set_cookie(
        COOKIE,
        sign(held.secret, session_id, expires),
        max_age=LIFETIME,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
    return response


async def sign_out(request: web.Request) -> web.Response:
    """Revoke the session the cookie names, for every copy of the cookie, and clear it here."""
    required = request.app[SETTINGS].read_token is not None
    if required:
        held = request.app[SESSION_KEYS]
        signed = verified(request.cookies.get(COOKIE), held.secret, time.time())
        if signed is not None:
            with contextlib.suppress(NotFound):  # pruned a week after it ended: nothing to end
                await sessions.revoke(request.app[DATABASE], signed.session_id)
    response = _json({"required": required, "signed_in": False})
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=request.secure)
    return response


async def _presented(request: web.Request) -> str:
    if request.content_type != "application/json":
        raise ApiError(400, "not_json", 'send {"token": "<read token>"} as application/json')
    try:
        document = orjson.loads(await read_whole(request, limit=4096))  # {"token": ...}
    except orjson.JSONDecodeError:
        raise ApiError(400, "malformed_json", "the body is not JSON") from None
    presented = document.get("token") if isinstance(document, dict) else None
    if not isinstance(presented, str):
        raise ApiError(400, "no_token", 'send {"token": "<read token>"}')
    return presented


def _json(document: dict[str, bool]) -> web.Response:
    return web.Response(
        body=orjson.dumps(document),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
