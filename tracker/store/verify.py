"""Recompute every stream's hash chain and name each event that no longer fits it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg

from tracker.store import bodies
from tracker.store.events import chained

# Stream by stream (the `events_stream` index), each in log order: one head in memory at a time.
CHAIN = """
SELECT position, stream_type, stream_id, raw, codec, hash FROM events
ORDER BY stream_type, stream_id, position
"""


@dataclass(frozen=True, slots=True)
class Break:
    position: int
    stream_type: str
    stream_id: str
    reason: str


class NotVerifiable(Exception):  # noqa: N818 - a state of the database, reported as such
    """The database holds no hash-chained log (not migrated, or migrated before chaining)."""


# Hashes are in the log from migration 004 on (sql/004_hash_chain.sql).
CHAINED = 4


@dataclass
class Verdict:
    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)


async def verify(url: str, progress: Callable[[int], None] | None = None) -> Verdict:
    """Walk the log stream by stream, in one snapshot, holding one stream's head at a time
    (memory flat in the number of streams).

    Each event is checked against the *stored* hash of the event before it in its stream, so a
    single altered event is reported alone, and a removed or reordered one breaks the chain
    exactly where it was. Breaks are listed in log order.
    """
    verdict = Verdict()
    # Read-only from the first statement: verify never migrates or writes, so it may run as a
    # role that can only SELECT, against a database it must not touch.
    conn = await asyncpg.connect(
        url, server_settings={"default_transaction_read_only": "on", "application_name": "verify"}
    )
    try:
        await _chained_log(conn)
        await bodies.ready(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            stream: tuple[str, str] | None = None
            head: bytes | None = None
            async for row in conn.cursor(CHAIN, prefetch=10_000):
                if (row["stream_type"], row["stream_id"]) != stream:
                    stream, head = (row["stream_type"], row["stream_id"]), None
                    verdict.streams += 1
                if not bodies.knows(row["codec"]):
                    await bodies.ready(conn, (row["codec"],))
                if broken := _broken(row, head):
                    verdict.breaks.append(Break(row["position"], *stream, broken))
                head = row["hash"]
                verdict.events += 1
                if progress and verdict.events % 100_000 == 0:
                    progress(verdict.events)
    finally:
        await conn.close()
    verdict.breaks.sort(key=lambda b: b.position)
    return verdict


async def _chained_log(conn: asyncpg.Connection) -> None:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    version = await conn.fetchval("SELECT max(version) FROM schema_migrations") if exists else None
    if version is None or version < CHAINED:
        raise NotVerifiable(
            "this database holds no hash-chained log (migrated to "
            f"{'nothing' if version is None else f'version {version}'}; the chain begins at "
            f"{CHAINED}): run tracker migrate first; verify itself never writes"
        )


def _broken(row: asyncpg.Record, head: bytes | None) -> str | None:
    """Why this event does not follow `head` (its stream's previous stored hash; None: it is
    the first), or None if it does."""
    try:
        body = bodies.unpack(row["codec"], row["raw"])
    except bodies.Undecodable as error:
        return f"its stored body cannot be read back, so it was altered: {error}"
    if row["hash"] == chained(head, body):
        return None
    if head is None:
        return (
            "the first event of its stream does not chain from the start: it was altered, or "
            "events before it were removed"
        )
    return (
        "its hash does not follow from the event before it in its stream: this event was "
        "altered, or an event between them was removed or reordered"
    )
