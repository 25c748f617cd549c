"""What the database trusts (issue 21, items 2, 4 and 7, and the smaller durability and
statistics findings): each attack of the outside review, tried again as it was tried then."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker
from tests.support.postgres import as_role
from tracker.store import horizon, rejected, trust
from tracker.store.database import Database

SW_STATE = "oceanconnect-swUpgradeStateChangeNotify"
MARKER = 29300  # the in-flight marker's top 16 bits (sql/013_parallel_append.sql)
APPEND_ARGS = "$1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[], $6::smallint[]"
BODY = b'{"x": 1}'


async def run(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def login_only(database_url: str) -> Iterator[str]:
    """A role that may only connect: anyone with a login on the database server."""
    role, password = f"tracker_stranger_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    asyncio.run(run(database_url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
    yield as_role(database_url, role, password)
    asyncio.run(run(database_url, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"'))


@pytest.fixture
def runtime_of(empty_database_url: str) -> Iterator[tuple[str, str]]:
    """(the runtime role's URL, its name) on a database migrated by the real command, where
    PUBLIC had CREATE on the schema first: PostgreSQL 14's default, kept by upgrades."""
    asyncio.run(run(empty_database_url, "GRANT CREATE ON SCHEMA public TO PUBLIC"))
    role, password = f"tracker_rt_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    done = tracker(
        empty_database_url, "migrate", "--runtime-role", role, TRACKER_RUNTIME_PASSWORD=password
    )
    assert done.returncode == 0, done.stderr
    yield as_role(empty_database_url, role, password), role
    asyncio.run(run(empty_database_url, f'DROP OWNED BY "{role}"', f'DROP ROLE "{role}"'))


@pytest.fixture
async def owner(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


SHADOW = """
CREATE FUNCTION public.cardinality(text[]) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    UPDATE events SET raw = '\\x6f776e6564' WHERE position = 1;  -- as whoever runs it
    RETURN pg_catalog.cardinality($1::anyarray);
END $$
"""


async def test_the_runtime_role_cannot_create_where_the_owner_looks(
    runtime_of: tuple[str, str], empty_database_url: str
) -> None:
    """The review's takeover: a `public.cardinality(text[])` made by the runtime role. The
    migration revoked PUBLIC's CREATE, so it cannot be made."""
    url, _ = runtime_of
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(SHADOW)
        assert not await conn.fetchval("SELECT has_schema_privilege('public', 'CREATE')")
    finally:
        await conn.close()
    assert not await trust_refusal(empty_database_url)


async def test_a_shadowing_function_is_never_called_by_the_append(
    runtime_of: tuple[str, str],
    empty_database_url: str,
    examples: dict[str, bytes],
    make_client: MakeClient,
) -> None:
    """Were CREATE granted again (by an operator, say) and a look-alike made, the owner's
    functions still call pg_catalog's: the append succeeds and event 1 is untouched. And the
    server refuses to start while the grant stands."""
    url, role = runtime_of
    client = await make_client(database_url=url)
    first = await client.post("/v1/notifications", data=examples[SW_STATE])
    assert first.status == 200
    await run(empty_database_url, f'GRANT CREATE ON SCHEMA public TO "{role}"')
    await run(url, SHADOW)
    again = await client.post("/v1/notifications", data=examples[SW_STATE].replace(b"}", b" }"))
    assert again.status == 200, await again.text()
    # The first delivery is still the bytes sent (the shadow would have written b"owned").
    assert await (await client.get("/v1/events/1/raw")).read() == examples[SW_STATE]
    done = tracker(empty_database_url, "verify")
    assert done.returncode == 0, done.stdout + done.stderr

    refusal = await trust_refusal(url)
    assert refusal is not None
    # The role, and only it (PUBLIC's CREATE went with `migrate`), with the statement that fixes
    # it; its name needs no quotes (lower case, digits and _), so quote_ident gives none.
    creators = refusal.partition(" may create objects in schema 'public'")[0]
    assert set(creators.split(", ")) == {role}
    assert f'REVOKE CREATE ON SCHEMA "public" FROM {role}' in refusal
    served = tracker(url, "serve", "--port", "0", TRACKER_START_TIMEOUT="5")
    assert served.returncode == 2, served.stdout + served.stderr
    assert "refusing to serve" in served.stderr


async def test_serve_refuses_while_public_may_create_in_the_schema(database_url: str) -> None:
    await run(database_url, "GRANT CREATE ON SCHEMA public TO PUBLIC")
    refusal = await trust_refusal(database_url)
    assert refusal is not None
    assert "PUBLIC may create objects in schema 'public'" in refusal
    assert 'REVOKE CREATE ON SCHEMA "public" FROM PUBLIC' in refusal
    await run(database_url, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    assert await trust_refusal(database_url) is None


async def trust_refusal(url: str) -> str | None:
    database = await Database.open(url, timeout=10, size=1)
    try:
        await trust.refuse_untrusted_schema(database)
    except trust.UntrustedSchema as refused:
        return str(refused)
    finally:
        await database.close()
    return None


async def test_the_runtime_role_chooses_no_time_lock_or_readmission(
    runtime_of: tuple[str, str], empty_database_url: str
) -> None:
    """The review forged history through tracker_append's arguments: a receive time in 2015, a
    readmission from a refusal that does not exist, and a lock key of its choosing. None of
    them is an argument any more, and the owner's append is not the runtime role's."""
    url, _ = runtime_of
    conn = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):  # the old, ten-argument append
            await conn.execute(
                "SELECT tracker_append(1, $1::text[], $1::text[], $1::text[], $2::bytea[], "
                "$2::bytea[], '{0}'::smallint[], $3::timestamptz[], '{NULL}'::timestamptz[], "
                "'{7}'::bigint[])",
                ["x"],
                [BODY],
                [datetime(2015, 1, 1, tzinfo=UTC)],
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                f"SELECT tracker_append_kept({APPEND_ARGS}, $7::timestamptz[], "
                "'{NULL}'::timestamptz[], '{7}'::bigint[], true)",
                *columns(),
                [datetime(2015, 1, 1, tzinfo=UTC)],
            )
        before = datetime.now(UTC)
        async with conn.transaction():
            row = await conn.fetchrow(
                f"SELECT * FROM tracker_append({APPEND_ARGS}, '{{NULL}}'::timestamptz[])",  # noqa: S608
                *columns(),
            )
        assert row is not None
        assert before - timedelta(seconds=5) <= row["received_at"] <= datetime.now(UTC)
        stored = await conn.fetchrow(
            "SELECT received_at, readmitted_from FROM events WHERE position = $1", row["appended"]
        )
        assert stored is not None
        assert (stored["received_at"], stored["readmitted_from"]) == (row["received_at"], None)
    finally:
        await conn.close()
    assert tracker(empty_database_url, "verify").returncode == 0


def columns() -> list[list[object]]:
    return [["device"], ["forged"], ["x"], [BODY], [BODY], [0]]


async def test_the_owner_readmits_only_from_a_refusal_received_then(
    database: Database, owner: asyncpg.Connection
) -> None:
    then = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    refusal = await rejected.keep(database, rejected.Rejection(422, "x", "x", [], BODY), then, 64)
    kept = (
        f"SELECT * FROM tracker_append_kept({APPEND_ARGS}, $7::timestamptz[], "  # noqa: S608
        "'{NULL}'::timestamptz[], $8::bigint[], false)"
    )
    for when, link in ((then, refusal + 1), (then + timedelta(seconds=1), refusal)):
        with pytest.raises(asyncpg.DataError, match="which was not refused at"):
            await owner.execute(kept, *columns(), [when], [link])
    for endless in (datetime.max.replace(tzinfo=UTC), None):
        with pytest.raises(asyncpg.DataError, match="no finite receive time"):
            await owner.execute(kept, *columns(), [endless], [None])
    row = await owner.fetchrow(kept, *columns(), [then], [refusal])
    assert row is not None
    assert row["received_at"] == then


async def test_a_strangers_lock_does_not_freeze_the_horizon(
    login_only: str, database: Database, examples: dict[str, bytes], make_client: MakeClient
) -> None:
    """The review's freeze: a role that can only connect takes an in-flight marker's lock.
    Followers page past it, and a checkpoint covers the whole log."""
    client = await make_client()
    for n in range(5):
        posted = await client.post(
            "/v1/notifications", data=examples[SW_STATE].replace(b"}", b" " * n + b"}")
        )
        assert posted.status == 200
    stranger = await asyncpg.connect(login_only)
    try:
        assert await stranger.fetchval(
            "SELECT pg_try_advisory_lock_shared(($1::bigint << 48) | 2)", MARKER
        )
        assert await horizon.read(database) == 5
        page = await client.get("/v1/events?after=0")
        assert [e["position"] for e in (await page.json())["items"]] == [1, 2, 3, 4, 5]
        done = tracker(
            database.url, "checkpoint", TRACKER_CHECKPOINT_KEY="k" * 32, TRACKER_LOG_LEVEL=""
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["position"] == 5
    finally:
        await stranger.close()


async def test_a_checkpoint_refuses_to_cover_less_than_the_log_in_silence(
    database: Database, examples: dict[str, bytes], make_client: MakeClient
) -> None:
    """A marker held by a role that may append (the owner's session, stuck) holds the horizon
    back, as it must; the checkpoint then refuses and names the session, instead of signing a
    statement about part of the log and exiting 0."""
    client = await make_client()
    for n in range(4):
        posted = await client.post(
            "/v1/notifications", data=examples[SW_STATE].replace(b"}", b" " * n + b"}")
        )
        assert posted.status == 200
    stuck = await asyncpg.connect(database.url)
    try:
        await stuck.execute("SELECT pg_advisory_lock_shared(($1::bigint << 48) | 2)", MARKER)
        pid = await stuck.fetchval("SELECT pg_backend_pid()")
        done = tracker(database.url, "checkpoint", TRACKER_CHECKPOINT_KEY="k" * 32)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout == ""
        assert "checkpoint: refused: the log is committed up to position 4" in done.stderr
        assert "only up to 2" in done.stderr
        assert f"pid {pid}" in done.stderr
    finally:
        await stuck.close()


async def test_every_connection_commits_durably_whatever_the_role_says(
    runtime_of: tuple[str, str],
) -> None:
    """After the start's durability check, the runtime role turned its own default off."""
    url, _ = runtime_of
    await run(url, "ALTER ROLE CURRENT_USER SET synchronous_commit = off")
    pinned = await Database.open(url, timeout=10, size=2)
    unpinned = await Database.open(url, timeout=10, size=1, durable=False)
    try:
        assert await pinned.pool.fetchval("SELECT current_setting('synchronous_commit')") == "on"
        assert await unpinned.pool.fetchval("SELECT current_setting('synchronous_commit')") == (
            "off"
        )  # the role's default really is off: the pin is what turned it on
    finally:
        await pinned.close()
        await unpinned.close()


async def test_import_ends_with_analyze(
    database_url: str, examples: dict[str, bytes], tmp_path: Path
) -> None:
    lines = tmp_path / "events.jsonl"
    body = json.loads(examples[SW_STATE])
    lines.write_text("".join(json.dumps(body | {"deviceId": f"d-{n}"}) + "\n" for n in range(3)))
    done = tracker(database_url, "import", str(lines))
    assert done.returncode == 0, done.stderr
    conn = await asyncpg.connect(database_url)
    try:
        analysed = await conn.fetch(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname IN ('events', 'device_tracks', 'devices') AND last_analyze IS NOT NULL"
        )
    finally:
        await conn.close()
    assert sorted(row["relname"] for row in analysed) == ["device_tracks", "devices", "events"]


async def test_serve_warns_about_a_large_table_never_analysed(
    database: Database, owner: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def about_devices(warnings: list[str]) -> list[str]:
        return [w for w in warnings if w.startswith("table devices ")]

    await owner.execute(
        "INSERT INTO devices (device_id, app_id, first_seen_at) "
        "SELECT 'd' || n, 'app', now() FROM generate_series(1, 20) AS n"
    )
    await owner.execute("SELECT pg_stat_force_next_flush()")
    await owner.execute("SELECT 1")  # counted rows reach the statistics at a statement's end
    assert about_devices(await trust.warn_about_statistics(database)) == []  # 20 is not large
    monkeypatch.setattr(trust, "LARGE_UNANALYSED", 10)
    warned: list[str] = []
    for _ in range(50):
        if warned := about_devices(await trust.warn_about_statistics(database)):
            break
        await asyncio.sleep(0.1)
    assert warned == [
        (
            "table devices holds about 20 rows and has never been analysed: its reads are "
            "planned without statistics until ANALYZE runs"
        )
    ]
    await owner.execute("ANALYZE devices")
    assert about_devices(await trust.warn_about_statistics(database)) == []
