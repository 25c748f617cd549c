"""Tamper evidence: each event chains to the one before it in its stream; `tracker verify`
names every altered, removed or reordered event, even one a superuser rewrote."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from tracker.domain.delivery import decode
from tracker.store import bodies, log
from tracker.store.database import Database
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
            await log.record(conn, events[start : start + per_transaction], NOW)


Tampering = Callable[[asyncpg.Connection], Awaitable[None]]
SET_BODY = "UPDATE events SET raw = $2, codec = $3 WHERE position = $1"
READ_BODY = "SELECT raw, codec FROM events WHERE position = $1"


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
            forged = hashlib.sha256(before + body).digest()
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


@pytest.mark.parametrize("per_transaction", [1, 3, 36], ids=lambda n: f"{n}-per-batch")
async def test_every_event_chains_to_the_one_before_it_in_its_stream(
    database: Database, migrated_url: str, per_transaction: int
) -> None:
    """Across batches and within one (36 per batch: each stream's events chain in it)."""
    await record_all(database, streams_of(), per_transaction)
    rows = await database.pool.fetch(
        "SELECT stream_type, stream_id, raw, codec, hash FROM events ORDER BY position"
    )
    heads: dict[tuple[str, str], bytes] = {}
    for row in rows:
        stream = (row["stream_type"], row["stream_id"])
        body = bodies.unpack(row["codec"], row["raw"])
        expected = hashlib.sha256(heads.get(stream, bytes(32)) + body).digest()
        assert row["hash"] == expected
        heads[stream] = expected
    done = tracker_verify(migrated_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "36 events in 3 streams; every hash chain is intact" in done.stdout


@pytest.mark.parametrize(
    "tampering", ["altered", "removed", "reordered", "rehashed", "garbled", "uncompressed"]
)
async def test_verify_names_what_a_superuser_rewrote(
    database: Database, migrated_url: str, tampering: str
) -> None:
    await record_all(database, streams_of())
    d1 = await positions_of(database, "d-1")
    victim, following = d1[4], d1[5]
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
    }[tampering]
    await as_superuser(migrated_url, *tamperings)

    done = tracker_verify(migrated_url)

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
    database_url: str, tmp_path: Path
) -> None:
    older = tmp_path / "sql"
    older.mkdir()
    for path in sorted(sql_dir().glob("00[123]_*.sql")):
        shutil.copy(path, older / path.name)
    conn = await asyncpg.connect(database_url)
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
    done = tracker_verify(database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 events in 3 streams; every hash chain is intact" in done.stdout
