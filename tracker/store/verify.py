"""Recompute every stream's hash chain and name each event that no longer fits it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import asyncpg

from tracker.store import bodies, chain, prune
from tracker.store.archive import Archive
from tracker.store.events import LoggedEvent

# Stream by stream (the `events_stream` index), each in log order: one head in memory at a time.
CHAIN = """
SELECT position, stream_type, stream_id, event_type, received_at, occurred_at, readmitted_from,
       raw, codec, {chain} AS chain, hash, {pruned} AS pruned_sha256, {seal} AS pruned_seal
FROM events ORDER BY stream_type, stream_id, position
"""


@dataclass(frozen=True, slots=True)
class Break:
    position: int
    stream_type: str
    stream_id: str
    reason: str


class NotVerifiable(Exception):  # noqa: N818 - a state of the database, reported as such
    """The database holds no hash-chained log (not migrated, or migrated before chaining)."""


# Hashes are in the log from migration 004 on (sql/004_hash_chain.sql), over all fields from
# 011 on (sql/011_chain_all_fields.sql), after the boundary it drew.
CHAINED, ALL_FIELDS, PRUNABLE = 4, 11, 18
BOUNDARY = "SELECT from_position FROM chain_versions WHERE version = 2"
BATCH = 10_000


@dataclass
class ChainReport:
    events: int = 0
    streams: int = 0
    breaks: list[Break] = field(default_factory=list)
    pruned: int = 0  # events whose body was pruned (archived)
    from_archive: int = 0  # of them, those whose link was recomputed from the archive


async def verify(
    url: str, progress: Callable[[int], None] | None = None, archive: Archive | None = None
) -> ChainReport:
    """Walk the log stream by stream, in one snapshot, holding one stream's head at a time
    (memory flat in the number of streams).

    Each event is checked against the *stored* hash of the event before it in its stream, so a
    single altered event is reported alone, and a removed or reordered one breaks the chain
    exactly where it was. Breaks are listed in log order.

    A pruned event's link cannot be recomputed without its body: it is checked against the
    seal recorded when it was pruned (chain.seal), and its stored hash is the link the next
    event must follow; where `archive` holds the body, which must be the one pruned (its
    SHA-256 in `pruned_bodies`), the link itself is recomputed too.
    """
    verdict = ChainReport()
    # Read-only from the first statement: verify never migrates or writes, so it may run as a
    # role that can only SELECT, against a database it must not touch.
    conn = await asyncpg.connect(
        url, server_settings={"default_transaction_read_only": "on", "application_name": "verify"}
    )
    try:
        version = await _chained_log(conn)
        await bodies.ready(conn)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            # Before 011 every link is of the body alone; after, from the boundary on, none is.
            boundary = await conn.fetchval(BOUNDARY) if version >= ALL_FIELDS else None
            columns = "chain" if version >= ALL_FIELDS else str(chain.BODY_ONLY)
            prunable = version >= PRUNABLE
            pruned = prune.RECORDED_SHA256 if prunable else "NULL::bytea"
            seal = prune.RECORDED_SEAL if prunable else "NULL::bytea"
            stream: tuple[str, str] | None = None
            head: bytes | None = None
            # Fetched a batch at a time: iterating a cursor row by row costs more than the check.
            cursor = await conn.cursor(CHAIN.format(chain=columns, pruned=pruned, seal=seal))
            while rows := await cursor.fetch(BATCH):
                for row in rows:
                    if (row["stream_type"], row["stream_id"]) != stream:
                        stream, head = (row["stream_type"], row["stream_id"]), None
                        verdict.streams += 1
                    if not bodies.knows(row["codec"]):
                        await bodies.ready(conn, (row["codec"],))
                    if row["codec"] == bodies.PRUNED:
                        verdict.pruned += 1
                        broken = _broken_pruned(row, head, boundary, archive, verdict)
                    else:
                        broken = _broken(row, head, boundary)
                    if broken:
                        verdict.breaks.append(Break(row["position"], *stream, broken))
                    head = row["hash"]
                verdict.events += len(rows)
                if progress:
                    progress(verdict.events)
    finally:
        await conn.close()
    verdict.breaks.sort(key=lambda b: b.position)
    return verdict


async def _chained_log(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    version = await conn.fetchval("SELECT max(version) FROM schema_migrations") if exists else None
    if version is None or version < CHAINED:
        raise NotVerifiable(
            "this database holds no hash-chained log (migrated to "
            f"{'nothing' if version is None else f'version {version}'}; the chain begins at "
            f"{CHAINED}): run tracker migrate first; verify itself never writes"
        )
    return int(version)


def _broken_pruned(
    row: asyncpg.Record,
    head: bytes | None,
    boundary: int | None,
    archive: Archive | None,
    verdict: ChainReport,
) -> str | None:
    """As `_broken`, for an event whose body was pruned: it must match its seal, and where
    `archive` holds its body, that body must be the one pruned and give its link."""
    if unsealed := _unsealed(row, head):
        return unsealed
    body = None if archive is None else archive.body(row["position"])
    if body is None:
        return None
    verdict.from_archive += 1
    if hashlib.sha256(body).digest() != bytes(row["pruned_sha256"]):
        return (
            "the archive's body is not the one pruned (its SHA-256 differs from the one "
            "recorded in pruned_bodies): the archive or the record was altered"
        )
    return _broken(row, head, boundary, body)


def _unsealed(row: asyncpg.Record, head: bytes | None) -> str | None:
    """Why a pruned event is not what was pruned (None: it is): only an unrecognised event's
    body is ever pruned, with its record in `pruned_bodies`, whose seal it must match."""
    recorded = row["pruned_sha256"]
    if row["stream_type"] != "unrecognised" or recorded is None or row["raw"]:
        return (
            "its body is marked pruned, but only unrecognised bodies are ever pruned, each with "
            "its record in pruned_bodies and nothing left in the log: altered"
        )
    if chain.seal(head, LoggedEvent.of(row), bytes(recorded), row["hash"]) != row["pruned_seal"]:
        return (
            "it does not match the seal recorded when its body was pruned: its hash, a field "
            "(position, stream, type, times, readmission) or the event before it in its stream "
            "was altered, or an event between them removed"
        )
    return None


def _broken(
    row: asyncpg.Record, head: bytes | None, boundary: int | None, body: bytes | None = None
) -> str | None:
    """Why this event does not follow `head` (its stream's previous stored hash; None: it is
    the first), or None if it does. `boundary`: where links of all fields begin, if they do.
    `body`: the event's body from elsewhere (an archive), if the log no longer holds it."""
    try:
        event = LoggedEvent.of(row)
    except bodies.Undecodable as error:
        return f"its stored body cannot be read back, so it was altered: {error}"
    if body is not None:
        event = replace(event, raw=body, pruned=False)
    version = row["chain"]
    if version == chain.BODY_ONLY:
        if boundary is not None and row["position"] >= boundary:
            return (
                f"it carries a link of its body alone, but every event from position {boundary} "
                "on is linked by all its fields: its link was rewritten to hide a changed field"
            )
        expected = chain.body_only(head, event.raw)
        what = "this event's body was altered"
    elif version == chain.ALL_FIELDS:
        expected = chain.all_fields(head, event)
        what = (
            "this event was altered (its body, position, stream, type, times or where it was "
            "readmitted from)"
        )
    else:
        return f"its link is of version {version}, which no tracker writes: it was altered"
    if row["hash"] == expected:
        return None
    if head is None:
        return (
            f"the first event of its stream does not chain from the start: {what}, or events "
            "before it were removed"
        )
    return (
        f"its hash does not follow from the event before it in its stream: {what}, or an event "
        "between them was removed or reordered"
    )
