"""Least privilege: `tracker migrate --runtime-role` sets up a role that can run the server,
append to and read the log, maintain the projections, and do nothing else."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import asyncpg
import pytest

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker
from tests.support.postgres import as_role

SW_STATE, SW_RESULT = (
    "oceanconnect-swUpgradeStateChangeNotify",
    "oceanconnect-swUpgradeResultNotify",
)
REJECTED_MAY = {"SELECT": True, "INSERT": True, "UPDATE": False, "DELETE": False}
REJECTED_MAY |= {"TRUNCATE": False, "REFERENCES": False, "TRIGGER": False}
EVENTS_MAY = REJECTED_MAY | {"INSERT": False}  # appends go through tracker_append only


FORGED = (
    "INSERT INTO events (stream_type, stream_id, event_type, raw, received_at, hash) "
    "VALUES ('device', 'forged', 'x', '\\x7b7d', now(), '\\x00')"
)


@pytest.fixture
def runtime(database_url: str) -> Iterator[tuple[str, str]]:
    """(the runtime role's URL, its name), set up by the real command; dropped afterwards."""
    role, password = f"tracker_rt_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    done = tracker(
        database_url, "migrate", "--runtime-role", role, TRACKER_RUNTIME_PASSWORD=password
    )
    assert done.returncode == 0, done.stderr
    assert f"runtime role '{role}' created and granted" in done.stdout
    yield as_role(database_url, role, password), role

    async def drop() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP OWNED BY "{role}"; DROP ROLE "{role}"')
        finally:
            await conn.close()

    asyncio.run(drop())


async def privileges(url: str, role: str) -> dict[str, dict[str, bool]]:
    conn = await asyncpg.connect(url)
    try:
        return {
            table: {
                what: await conn.fetchval(
                    "SELECT has_table_privilege($1, $2, $3)", role, table, what
                )
                for what in REJECTED_MAY
            }
            for table in ("events", "rejected", "device_tracks", "replay_progress")
        }
    finally:
        await conn.close()


async def test_the_runtime_role_serves_and_may_only_read_and_append_the_log(
    runtime: tuple[str, str],
    database_url: str,
    examples: dict[str, bytes],
    make_client: MakeClient,
) -> None:
    url, role = runtime
    client = await make_client(database_url=url)  # migrates on start: nothing to do, allowed
    for raw in examples.values():
        response = await client.post("/v1/notifications", data=raw)
        assert response.status == 200, await response.text()
    posted = await client.post("/v1/notifications", data=examples[SW_STATE])
    assert (await client.get(f"/v1/devices/{(await posted.json())['stream_id']}")).status == 200
    assert (await client.post("/v1/notifications", data=b"{")).status == 400  # into rejected
    assert (await client.get("/metrics")).status == 200

    granted = await privileges(database_url, role)
    assert granted["events"] == EVENTS_MAY
    assert granted["rejected"] == REJECTED_MAY
    assert granted["device_tracks"] == REJECTED_MAY | {"UPDATE": True}  # upserts
    assert granted["replay_progress"] == dict.fromkeys(REJECTED_MAY, False) | {"SELECT": True}

    conn = await asyncpg.connect(url)
    try:
        for statement in (
            # Past the append lock and the hash chain: only tracker_append may insert.
            FORGED,
            "UPDATE events SET received_at = now()",
            "DELETE FROM events",
            "TRUNCATE events",
            "ALTER TABLE events DISABLE TRIGGER events_append_only",
            "DROP TABLE device_tracks",
            "DELETE FROM device_transitions",
            "CREATE TABLE intruder (x int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_replay_keeps_the_runtime_role_working(
    runtime: tuple[str, str],
    database_url: str,
    examples: dict[str, bytes],
    make_client: MakeClient,
) -> None:
    """Replay swaps in new tables: the role's grants must come with them."""
    url, _ = runtime
    client = await make_client(database_url=url)
    posted = await client.post("/v1/notifications", data=examples[SW_STATE])
    assert posted.status == 200
    device = (await posted.json())["stream_id"]

    done = tracker(database_url, "replay")
    assert done.returncode == 0, done.stderr

    assert (await client.post("/v1/notifications", data=examples[SW_RESULT])).status == 200
    assert (await client.get(f"/v1/devices/{device}")).status == 200
    assert (await client.get(f"/v1/devices/{device}/transitions")).status == 200


async def test_the_runtime_role_keeps_sessions_but_cannot_touch_their_secret(
    runtime: tuple[str, str], make_client: MakeClient
) -> None:
    """Sessions are opened and revoked by the server; the secret that signs them is drawn by
    the owner (migration, `tracker sessions revoke --all`), and only read by the server."""
    url, _ = runtime
    read = "read-token-of-the-runtime-role"
    client = await make_client(database_url=url, read_token=read)
    signed = await client.post("/v1/session", json={"token": read})
    assert signed.status == 200
    cookie = {"Cookie": f"tracker_session={signed.cookies['tracker_session'].value}"}
    client.session.cookie_jar.clear()
    assert (await client.get("/v1/events", headers=cookie)).status == 200
    assert (await client.delete("/v1/session", headers=cookie)).status == 200
    assert (await client.get("/v1/events", headers=cookie)).status == 401

    conn = await asyncpg.connect(url)
    try:
        for statement in (
            "UPDATE session_keys SET secret = '\\x00'",
            "DELETE FROM session_keys",
            "INSERT INTO session_keys (secret, token_salt) VALUES ('\\x00', '\\x00')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()
