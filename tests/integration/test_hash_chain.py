"""Tamper evidence: each event chains to the one before it in its stream; `tracker verify`
names every altered, removed or reordered event, even one a superuser rewrote."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import asyncpg
import pytest

from tests.support.legacy_log import append_body_only
from tracker.domain.delivery import NewEvent, decode
from tracker.store import bodies, chain, ingestion, rejected
from tracker.store import events as events_store
from tracker.store.database import Database
from tracker.store.events import LoggedEvent
from tracker.store.migrations import migrate, sql_dir

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def body(device: str, state: str) -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "app",
            "operationId": "op",
            "subOperationId": "sub",
            "swUpgradeState": state,
        }
    ).encode()


STATES = ["downloading", "downloaded", "updating", "idle"]


def tracker_verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", "verify"],
        env={**os.environ, "TRACKER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def record_all(database: Database, bodies: list[bytes], per_transaction: int = 3) -> None:
    events = [decode(raw) for raw in bodies]
    for start in range(0, len(events), per_transaction):
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, events[start : start + per_transaction], NOW)


Tampering = Callable[[asyncpg.Connection], Awaitable[None]]
SET_BODY = "UPDATE events SET raw = $2, codec = $3 WHERE position = $1"
READ_BODY = "SELECT raw, codec FROM events WHERE position = $1"
READ_EVENT = "SELECT * FROM events WHERE position = $1"


def edit_body(position: int, old: str, new: str, *, rehash_after: int | None = None) -> Tampering:
    """Rewrite one body as a forger who knows our codec would; optionally recompute its hash
    from the event before it (`rehash_after`), as a careful one would."""

    async def edit(conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(READ_BODY, position)
        assert row is not None
        body = bodies.unpack(row["codec"], row["raw"]).replace(old.encode(), new.encode())
        codec, stored = bodies.pack(body)
        await conn.execute(SET_BODY, position, stored, codec)
        if rehash_after is not None:
            before = await conn.fetchval(
                "SELECT hash FROM events WHERE position = $1", rehash_after
            )
            fields = await conn.fetchrow(READ_EVENT, position)
            assert fields is not None
            forged = chain.all_fields(before, replace(LoggedEvent.of(fields), raw=body))
            await conn.execute("UPDATE events SET hash = $2 WHERE position = $1", position, forged)

    return edit


def swap_bodies(first: int, second: int) -> Tampering:
    async def swap(conn: asyncpg.Connection) -> None:
        a, b = [await conn.fetchrow(READ_BODY, p) for p in (first, second)]
        assert a is not None
        assert b is not None
        await conn.execute(SET_BODY, first, b["raw"], b["codec"])
        await conn.execute(SET_BODY, second, a["raw"], a["codec"])

    return swap


def execute(statement: str, *args: object) -> Tampering:
    async def run(conn: asyncpg.Connection) -> None:
        await conn.execute(statement, *args)

    return run


async def as_superuser(url: str, *tamperings: Tampering) -> None:
    """What someone who can get past the append-only trigger could do."""
    conn = await asyncpg.connect(url)
    try:
        await bodies.ready(conn)
        async with conn.transaction():
            await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
            for tampering in tamperings:
                await tampering(conn)
            await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    finally:
        await conn.close()


def streams_of(rounds: int = 3) -> list[bytes]:
    """Three devices, each through `rounds` full upgrades, interleaved."""
    return [body(f"d-{d}", STATES[i % 4]) for i in range(rounds * 4) for d in range(3)]


async def positions_of(database: Database, device: str) -> list[int]:
    rows = await database.pool.fetch(
        "SELECT position FROM events WHERE stream_id = $1 ORDER BY position", device
    )
    return [row["position"] for row in rows]


LINKED = """
SELECT position, stream_type, stream_id, event_type, received_at, occurred_at, readmitted_from,
       raw, codec, chain, hash
FROM events ORDER BY position
"""


async def assert_linked_by_all_fields(database: Database) -> int:
    """Each stored hash is the link tracker/store/chain.py computes (verify's own code) from
    every field of the event, chained to the one before it in its stream."""
    heads: dict[tuple[str, str], bytes] = {}
    rows = await database.pool.fetch(LINKED)
    for row in rows:
        stream = (row["stream_type"], row["stream_id"])
        expected = chain.all_fields(heads.get(stream), LoggedEvent.of(row))
        assert (row["chain"], row["hash"]) == (chain.ALL_FIELDS, expected), row["position"]
        heads[stream] = expected
    return len(rows)


@pytest.mark.parametrize("per_transaction", [1, 3, 36], ids=lambda n: f"{n}-per-batch")
async def test_every_event_chains_to_the_one_before_it_in_its_stream(
    database: Database, database_url: str, per_transaction: int
) -> None:
    """Across batches and within one (36 per batch: each stream's events chain in it)."""
    await record_all(database, streams_of(), per_transaction)
    assert await assert_linked_by_all_fields(database) == 36
    done = tracker_verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "36 events in 3 streams; every hash chain is intact" in done.stdout


async def test_the_database_and_verify_link_every_field_alike(
    database: Database, database_url: str
) -> None:
    """Fields at their edges: platform times present and absent, before 1970 and to the
    microsecond, in years 1 and 9999 (stored as -infinity and infinity), readmitted events,
    texts beyond ASCII, an empty body."""
    moments = [
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
        datetime(2026, 11, 27, 8, 0, 0, 999_999, tzinfo=UTC),
        datetime(2000, 2, 29, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=5, minutes=45))),
    ]
    events = [
        NewEvent("device", "d-ü", "swUpgradeStateChangeNotify", b"{}", moments[0], None, 1),
        NewEvent("device", "d-ü", "swUpgradeResultNotify", b"", None, None, None),
        NewEvent("task", "\u4efb\u52a1", "batchtask.update", body("x", "y"), moments[2], None, 2),
        NewEvent("device", "d-ü", "fwUpgradeStateChangeNotify", b"\x00\xff", moments[1], None),
        NewEvent("task", "t", "batchtask.update", b"{}", datetime(1, 1, 1, tzinfo=UTC), None),
        NewEvent("task", "t", "batchtask.update", b"{}", datetime.max.replace(tzinfo=UTC), None),
        NewEvent(
            "task", "t", "batchtask.update", b"{}", datetime(1, 1, 1, 0, 0, 1, tzinfo=UTC), None
        ),
    ]
    # The refusals they were readmitted from, received when they were: the append checks it.
    for moment in moments[:2]:
        await rejected.keep(database, rejected.Rejection(422, "x", "x", [], b"{}"), moment, 64)
    async with database.transaction("append") as conn:
        await events_store.append(conn, events[:2], moments[:2])
        await events_store.append(conn, events[2:], moments[1])
    assert await assert_linked_by_all_fields(database) == 7
    done = tracker_verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 events in 3 streams; every hash chain is intact" in done.stdout


def relink_as_body_only(position: int) -> Tampering:
    """Downgrade one event's link to the body-only kind events before migration 011 carry,
    recomputed from the event before it: what hides a changed field if verify allowed it."""

    async def relink(conn: asyncpg.Connection) -> None:
        row = await conn.fetchrow(
            "SELECT e.raw, e.codec, (SELECT p.hash FROM events p WHERE p.stream_id = e.stream_id"
            " AND p.position < e.position ORDER BY p.position DESC LIMIT 1) AS previous "
            "FROM events e WHERE e.position = $1",
            position,
        )
        assert row is not None
        forged = chain.body_only(row["previous"], bodies.unpack(row["codec"], row["raw"]))
        await conn.execute(
            "UPDATE events SET received_at = received_at - interval '1 day', chain = 1, "
            "hash = $2 WHERE position = $1",
            position,
            forged,
        )

    return relink


FIELDS_CHANGED = ["back-dated", "re-timed", "moved", "retyped", "readmitted", "repositioned"]


@pytest.mark.parametrize(
    "tampering",
    [
        *["altered", "removed", "reordered", "rehashed", "garbled", "uncompressed"],
        *FIELDS_CHANGED,
        *["downgraded", "unknown-link"],
    ],
)
async def test_verify_names_what_a_superuser_rewrote(
    database: Database, database_url: str, tampering: str
) -> None:
    await record_all(database, streams_of())
    d1 = await positions_of(database, "d-1")
    victim, following, last = d1[4], d1[5], d1[-1]
    next_in_d2 = min(p for p in await positions_of(database, "d-2") if p > victim)
    edit = "UPDATE events SET {} WHERE position = $1"
    tamperings: list[Tampering] = {
        "altered": [edit_body(victim, "d-1", "d-9")],
        "removed": [execute("DELETE FROM events WHERE position = $1", victim)],
        # Two bodies of one stream swap places (positions stay, so only the chain can tell).
        "reordered": [swap_bodies(victim, following)],
        # A careful forger recomputes the altered event's own hash: the next one still breaks.
        "rehashed": [edit_body(victim, "downloading", "updating", rehash_after=d1[3])],
        # Stored bytes that are no longer a frame of their codec.
        "garbled": [execute("UPDATE events SET raw = '\\x28b52ffd00' WHERE position = $1", victim)],
        # A body written back as plain text under a compressed codec.
        "uncompressed": [
            execute(
                "UPDATE events SET raw = convert_to('{}', 'UTF8'), codec = 1 WHERE position = $1",
                victim,
            )
        ],
        # Every other stored field: the body is the same, the event is not.
        "back-dated": [execute(edit.format("received_at = received_at - interval '1d'"), victim)],
        "re-timed": [execute(edit.format("occurred_at = '2020-01-01T00:00:00Z'"), victim)],
        "moved": [execute(edit.format("stream_id = 'd-2'"), victim)],
        "retyped": [execute(edit.format("event_type = 'fwUpgradeStateChangeNotify'"), victim)],
        "readmitted": [execute(edit.format("readmitted_from = 12345"), victim)],
        "repositioned": [
            execute("ALTER TABLE events ALTER COLUMN position SET GENERATED BY DEFAULT"),
            execute(edit.format("position = position + 1000"), victim),
            execute("ALTER TABLE events ALTER COLUMN position SET GENERATED ALWAYS"),
        ],
        # The last of its stream (no event after it to break) and back-dated, with a body-only
        # link recomputed for it; or a link of a kind nobody writes.
        "downgraded": [relink_as_body_only(last)],
        "unknown-link": [execute(edit.format("chain = 3"), victim)],
    }[tampering]
    await as_superuser(database_url, *tamperings)

    done = tracker_verify(database_url)

    assert done.returncode == 1, done.stdout + done.stderr
    named = {
        int(line.split()[2]) for line in done.stdout.splitlines() if line.startswith("tampered:")
    }
    expected = {
        "altered": {victim},
        "removed": {following},
        "reordered": {victim, following},
        "rehashed": {following},
        "garbled": {victim},
        "uncompressed": {victim},
        "back-dated": {victim},
        "re-timed": {victim},
        # Checked in its new stream against that stream's events, and missed in
        # its old one, and the event after it in its new one.
        "moved": {victim, following, next_in_d2},
        "retyped": {victim},
        "readmitted": {victim},
        "repositioned": {victim + 1000, following},
        "downgraded": {last},
        "unknown-link": {victim},
    }[tampering]
    assert named == expected, done.stdout
    assert "break their stream's hash chain" in done.stdout


async def test_concurrent_writers_never_chain_to_a_stale_head(database_url: str) -> None:
    """Two pools (as two server processes would) append to the same streams at once."""
    pools = [await Database.open(database_url, timeout=10, size=4) for _ in range(2)]
    try:
        async with pools[0].pool.acquire() as conn:
            await migrate(conn)

        async def writer(database: Database, n: int) -> None:
            for i in range(25):
                await record_all(database, [body(f"shared-{i % 2}", STATES[(n + i) % 4])], 1)

        await asyncio.gather(*(writer(pools[n % 2], n) for n in range(8)))
    finally:
        for database in pools:
            await database.close()
    done = tracker_verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "200 events in 2 streams" in done.stdout


async def test_the_migration_chains_a_log_written_before_it(
    empty_database_url: str, tmp_path: Path
) -> None:
    older = tmp_path / "sql"
    older.mkdir()
    for path in sorted(sql_dir().glob("00[123]_*.sql")):
        shutil.copy(path, older / path.name)
    conn = await asyncpg.connect(empty_database_url)
    try:
        await migrate(conn, older)
        for i in range(10):
            raw = body(f"old-{i % 3}", STATES[i % 4])
            await conn.execute(
                "INSERT INTO events (stream_type, stream_id, event_type, payload, raw, received_at)"
                " VALUES ('device', $1, 'swUpgradeStateChangeNotify', $2::jsonb, $3, now())",
                f"old-{i % 3}",
                raw.decode(),
                raw,
            )
        assert "004_hash_chain.sql" in await migrate(conn)
    finally:
        await conn.close()
    done = tracker_verify(empty_database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 events in 3 streams; every hash chain is intact" in done.stdout


async def test_events_logged_before_all_field_links_keep_theirs(
    empty_database_url: str, tmp_path: Path
) -> None:
    """Migration 011 leaves the body-only links of the events before it (rewriting them would
    launder whatever was done to them) and draws the boundary after which none may appear."""
    older = tmp_path / "sql"
    older.mkdir()
    for path in sorted(sql_dir().glob("0*.sql")):
        if path.name < "011":
            shutil.copy(path, older / path.name)
    database = await Database.open(empty_database_url, timeout=10, size=2)
    try:
        async with database.pool.acquire() as conn:
            await migrate(conn, older)
        # 12 events, body-only links; the log alone (this code's projections are newer than 010)
        async with database.transaction("append") as conn:  # what the append of 010 wrote
            await append_body_only(conn, [decode(raw) for raw in streams_of(rounds=1)], NOW)
        async with database.pool.acquire() as conn:
            assert "011_chain_all_fields.sql" in await migrate(conn)
            boundary = await conn.fetchval(
                "SELECT from_position FROM chain_versions WHERE version = 2"
            )
        await record_all(database, streams_of(rounds=1))  # 12 more, linked by all fields
        links = await database.pool.fetch("SELECT position, chain FROM events ORDER BY position")
    finally:
        await database.close()
    assert boundary == 13
    assert [row["chain"] for row in links] == [1] * 12 + [2] * 12
    done = tracker_verify(empty_database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "24 events in 3 streams; every hash chain is intact" in done.stdout

    # Before the boundary a body-only link is what it was; back-dating one still escapes the
    # chain there (a checkpoint catches it), which the docs say.
    await as_superuser(
        empty_database_url,
        execute("UPDATE events SET received_at = received_at - interval '1 day'"),
    )
    done = tracker_verify(empty_database_url)
    named = [line for line in done.stdout.splitlines() if line.startswith("tampered:")]
    assert len(named) == 12
    assert all(int(line.split()[2]) >= 13 for line in named), done.stdout
