"""Dashboard sessions held by the server: a cookie signed with the database's random secret
(not the read token), revoked by sign-out and by `tracker sessions revoke`, agreed on at once by
every server on the database, and ended by a change of read token."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker
from tests.support.waiting import until
from tracker.http import session
from tracker.http.session_cookie import verified

READ = "read-token-of-the-sessions-test"
JSON = {"Content-Type": "application/json"}


async def sign_in(client: TestClient[Any, Any], token: str = READ) -> str:
    answer = await client.post("/v1/session", data=json.dumps({"token": token}), headers=JSON)
    assert answer.status == 200, await answer.text()
    value: str = answer.cookies[session.COOKIE].value
    client.session.cookie_jar.clear()  # each request below says which cookie it carries
    return value


async def reads(client: TestClient[Any, Any], cookie: str) -> int:
    answer = await client.get("/v1/events", headers={"Cookie": f"{session.COOKIE}={cookie}"})
    return answer.status


async def secret_of(url: str) -> bytes:
    conn = await asyncpg.connect(url)
    try:
        return bytes(await conn.fetchval("SELECT secret FROM session_keys"))
    finally:
        await conn.close()


async def test_a_stolen_cookie_does_not_let_anyone_test_token_guesses(
    make_client: MakeClient, database_url: str
) -> None:
    """The finding: the cookie was an HMAC keyed by the read token, so 100,000 guesses took
    0.2 s offline. Now its MAC is keyed by the database's random secret: the read token, or any
    guess of it, does not verify it, under this scheme or the old one."""
    client = await make_client(read_token=READ)
    cookie = await sign_in(client)
    secret = await secret_of(database_url)
    assert len(secret) == 48
    assert verified(cookie, secret, time.time()) is not None  # keyed by the database's secret
    assert verified(cookie, READ.encode(), time.time()) is None  # not by the read token
    session_id, expires, mac = cookie.split(".")
    assert READ not in cookie
    guesses = [secrets.token_urlsafe(12) for _ in range(100_000)]
    guesses.insert(secrets.randbelow(len(guesses)), READ)  # the right one is among them
    started = time.perf_counter()
    hits = [
        guess
        for guess in guesses
        for message in (
            f"{session_id}.{expires}".encode(),  # this scheme's message
            b"tracker dashboard session, expires " + expires.encode(),  # the old scheme's
        )
        if hmac.compare_digest(mac, hmac.new(guess.encode(), message, hashlib.sha256).hexdigest())
    ]
    print(
        f"\n{len(guesses):,} guesses against a stolen cookie in "
        f"{time.perf_counter() - started:.2f} s: {len(hits)} verified"
    )
    assert hits == []


async def test_sign_out_revokes_the_session_for_every_copy_of_the_cookie(
    make_client: MakeClient,
) -> None:
    client = await make_client(read_token=READ)
    cookie, other = await sign_in(client), await sign_in(client)
    assert await reads(client, cookie) == 200
    copied = cookie  # as an attacker would keep it
    out = await client.delete("/v1/session", headers={"Cookie": f"{session.COOKIE}={cookie}"})
    assert out.status == 200
    assert out.cookies[session.COOKIE].value == ""
    assert await reads(client, copied) == 401
    asked = await client.get("/v1/session", headers={"Cookie": f"{session.COOKIE}={copied}"})
    assert await asked.json() == {"required": True, "signed_in": False}
    assert await reads(client, other) == 200  # another browser's session goes on


async def test_every_server_on_the_database_agrees_at_once(make_client: MakeClient) -> None:
    """Two servers (as two workers or hosts would be): a session opened on one reads on the
    other, and a sign-out on one ends it on the other at the very next request."""
    first, second = await make_client(read_token=READ), await make_client(read_token=READ)
    cookie = await sign_in(first)
    assert await reads(second, cookie) == 200
    await first.delete("/v1/session", headers={"Cookie": f"{session.COOKIE}={cookie}"})
    assert await reads(second, cookie) == 401


async def test_a_new_read_token_ends_every_session(make_client: MakeClient) -> None:
    old = await make_client(read_token=READ)
    cookie = await sign_in(old)
    renewed = await make_client(read_token=READ + "-renewed")
    assert await reads(renewed, cookie) == 401  # its MAC verifies, its token digest differs
    assert await reads(old, cookie) == 200  # the session itself was not revoked


async def test_tracker_sessions_revoke_ends_a_live_session(
    make_client: MakeClient, database_url: str
) -> None:
    client = await make_client(read_token=READ)
    cookie, kept = await sign_in(client), await sign_in(client)
    session_id = cookie.split(".")[0]
    listed = await asyncio.to_thread(tracker, database_url, "sessions", "list")
    assert listed.returncode == 0, listed.stderr
    assert f"{session_id}  live" in listed.stdout

    done = await asyncio.to_thread(tracker, database_url, "sessions", "revoke", session_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"sessions: {session_id} revoked\n"
    assert await reads(client, cookie) == 401
    assert await reads(client, kept) == 200
    listed = await asyncio.to_thread(tracker, database_url, "sessions", "list")
    assert f"{session_id}  revoked" in listed.stdout

    unknown = await asyncio.to_thread(tracker, database_url, "sessions", "revoke", "f" * 32)
    assert unknown.returncode == 3
    assert unknown.stderr == f"sessions: no session {'f' * 32}\n"


async def test_revoke_all_ends_every_session_and_draws_a_new_secret(
    make_client: MakeClient, database_url: str
) -> None:
    first, second = await make_client(read_token=READ), await make_client(read_token=READ)
    cookies = [await sign_in(first), await sign_in(second)]
    before = await secret_of(database_url)

    done = await asyncio.to_thread(tracker, database_url, "sessions", "revoke", "--all")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "sessions: ended 2 live sessions and drew a new signing secret\n"
    after = await secret_of(database_url)
    assert after != before
    assert len(after) == 48
    for client in (first, second):
        for cookie in cookies:
            assert await reads(client, cookie) == 401  # at once: the rows are revoked
    assert all(verified(cookie, after, time.time()) is None for cookie in cookies)

    fresh = await sign_in(first)  # signed with the new secret, read from the row it opens
    assert verified(fresh, after, time.time()) is not None
    # The other server reads the new secret within FOLLOW_SECONDS (a margin for a busy machine).
    held = second.app[session.SESSION_KEYS]
    within = session.FOLLOW_SECONDS + 0.5
    await until(lambda: held.secret == after, "the other server to follow", within=within)
    assert await reads(second, fresh) == 200
