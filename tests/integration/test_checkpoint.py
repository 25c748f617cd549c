"""`tracker checkpoint` and `tracker verify --against` (issue 12, item 5): what the per-stream
chains cannot see, a signed checkpoint kept elsewhere does. Each tampering here is done as a
superuser who disabled the append-only trigger, and where it can, leaves every per-stream chain
intact."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from tests.support.cli import tracker
from tracker.domain.delivery import decode
from tracker.store import bodies, chain, ingestion
from tracker.store.database import Database
from tracker.store.events import LoggedEvent

KEY = "checkpoint-key-for-tests"


def signed(url: str, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    """`tracker ARGS` with the checkpoint key set (to `key`)."""
    return tracker(url, *args, TRACKER_CHECKPOINT_KEY=key)


Tamper = Callable[[asyncpg.Connection], Awaitable[None]]


def sw(device: str, state: str) -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "a",
            "operationId": "o",
            "subOperationId": "s",
            "swUpgradeState": state,
        }
    ).encode()


STATES = ("downloading", "downloaded", "updating", "idle")


async def append(url: str, raws: list[bytes]) -> None:
    database = await Database.open(url, timeout=10, size=1)
    try:
        async with database.transaction("append") as conn:
            await ingestion.ingest(conn, [decode(raw) for raw in raws], datetime.now(UTC))
    finally:
        await database.close()


async def rechain(conn: asyncpg.Connection, stream_id: str) -> None:
    """Recompute a device stream's links from its (tampered) rows, as a forger who read
    tracker/store/chain.py would."""
    await bodies.ready(conn)
    head = None
    rows = await conn.fetch(
        "SELECT * FROM events WHERE stream_type = 'device' AND stream_id = $1 ORDER BY position",
        stream_id,
    )
    for row in rows:
        head = chain.all_fields(head, LoggedEvent.of(row))
        await conn.execute("UPDATE events SET hash = $1 WHERE position = $2", head, row["position"])


async def cut_a_streams_tail(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "DELETE FROM events WHERE position = (SELECT max(position) FROM events "
        "WHERE stream_id = 'dev-a')"
    )


async def delete_a_stream(conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM events WHERE stream_id = 'dev-b'")


async def move_an_event(conn: asyncpg.Connection) -> None:
    last = await conn.fetchval("SELECT max(position) FROM events WHERE stream_id = 'dev-a'")
    await conn.execute("UPDATE events SET stream_id = 'dev-c' WHERE position = $1", last)
    await rechain(conn, "dev-a")
    await rechain(conn, "dev-c")


async def rewrite_a_stream(conn: asyncpg.Connection) -> None:
    first = await conn.fetchval("SELECT min(position) FROM events WHERE stream_id = 'dev-b'")
    await conn.execute(
        "UPDATE events SET raw = $1, codec = 0 WHERE position = $2", sw("dev-b", "idle"), first
    )
    await rechain(conn, "dev-b")


async def back_date_an_event(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "UPDATE events SET received_at = received_at - $1::interval "
        "WHERE position = (SELECT min(position) FROM events WHERE stream_id = 'dev-a')",
        timedelta(days=1),
    )
    await rechain(conn, "dev-a")


@pytest.mark.parametrize(
    "tamper",
    [cut_a_streams_tail, delete_a_stream, move_an_event, rewrite_a_stream, back_date_an_event],
    ids=lambda tamper: tamper.__name__,
)
async def test_a_checkpoint_catches_what_the_chains_cannot(
    database_url: str, tmp_path: Path, tamper: Tamper
) -> None:
    await append(database_url, [sw(d, s) for s in STATES for d in ("dev-a", "dev-b")])
    taken = signed(database_url, "checkpoint")
    assert taken.returncode == 0, taken.stderr
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(taken.stdout)
    statement = json.loads(taken.stdout)
    assert (statement["events"], statement["position"]) == (8, 8)

    await append(database_url, [sw("dev-z", "downloading")])  # the log goes on: still extends
    clean = signed(database_url, "verify", "--against", str(checkpoint))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verify: the log extends the checkpoint of " in clean.stdout

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await tamper(conn)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    finally:
        await conn.close()

    plain = signed(database_url, "verify")
    assert plain.returncode == 0, plain.stdout  # every tampering left the chains intact
    caught = signed(database_url, "verify", "--against", str(checkpoint))
    assert caught.returncode == 1, caught.stdout + caught.stderr
    assert any(line.startswith("checkpoint: ") for line in caught.stdout.splitlines())


async def test_a_checkpoint_cannot_be_forged_or_signed_with_another_key(
    database_url: str, tmp_path: Path
) -> None:
    await append(database_url, [sw("dev-a", state) for state in STATES])
    taken = signed(database_url, "checkpoint")
    checkpoint = tmp_path / "checkpoint.json"
    forged = json.loads(taken.stdout) | {"events": 3, "position": 3}
    checkpoint.write_text(json.dumps(forged))
    done = signed(database_url, "verify", "--against", str(checkpoint))
    assert done.returncode == 1
    assert "the checkpoint's signature does not match" in done.stdout
    checkpoint.write_text(taken.stdout)
    other = signed(database_url, "verify", "--against", str(checkpoint), key="another key")
    assert other.returncode == 1
    assert "signed with another TRACKER_CHECKPOINT_KEY" in other.stdout
    unsigned = signed(database_url, "checkpoint", key="")
    assert unsigned.returncode == 2
    assert "set TRACKER_CHECKPOINT_KEY" in unsigned.stderr
