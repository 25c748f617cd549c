"""The event log: append in commit order, read by position without ever skipping a row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from tracker.domain.delivery import NewEvent
from tracker.store import bodies, horizon
from tracker.store.database import Connection, Database, Record
from tracker.store.errors import NotFound

# How appends run side by side (sql/013_parallel_append.sql). Each append holds APPEND_LOCK
# shared (whoever must wait out every append, like `tracker replay`'s swap, takes it exclusive),
# locks the streams it writes in one sorted order, publishes an in-flight marker, and only then
# draws its positions. So a stream's events commit, chain and project in position order
# (DESIGN.md invariant 3), appends to different streams never wait on each other, and a
# follower pages up to `horizon.read`, below which no event can still commit (invariant 5; the
# proof is in horizon.py).
APPEND_LOCK = 0x7472_6B6C_6F67  # "trklog" (sql/011_chain_all_fields.sql names it too)
TAKE_APPEND_LOCK = "SELECT pg_advisory_xact_lock($1)"  # exclusive: no append in flight

# `tracker_append` takes the locks, draws the batch's positions, stamps the database's time,
# then inserts with each event's hash chained to its stream's head over all its fields
# (tracker/store/chain.py), in one round trip. Tests fail if positions could be drawn before
# the marker (test_log_store.py) or a chain built on a stale head (test_hash_chain.py). The
# runtime role chooses no time, lock or readmission link (sql/016_trust_boundaries.sql);
# `tracker_append_kept`, the owner's alone, keeps the times and links of an import or a
# readmission, checking each link against its refusal.
APPEND = """
SELECT appended AS position, received_at
FROM tracker_append($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
                    $6::smallint[], $7::timestamptz[])
"""
APPEND_KEPT = """
SELECT appended AS position, received_at
FROM tracker_append_kept($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bytea[],
                         $6::smallint[], $7::timestamptz[], $8::timestamptz[], $9::bigint[],
                         $10)
"""

READ_AFTER = """
SELECT position, stream_type, stream_id, event_type, raw, codec, received_at, occurred_at,
       readmitted_from
FROM events WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2
"""

READ_ONE_RAW = "SELECT raw, codec FROM events WHERE position = $1"
# A page's sizes before its bodies: the stored size and a zstd frame's header (its content size).
SIZES_AFTER = """
SELECT codec, octet_length(raw) AS stored, substring(raw FROM 1 FOR 18) AS head
FROM events WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2
"""
PAGE_BYTES = 8 * 1024 * 1024  # bodies (as received) per page of the log, at most; one at least

EXPORT = """
SELECT position, stream_type, stream_id, event_type, raw, codec, received_at, occurred_at,
       readmitted_from
FROM events WHERE position > $1 AND position <= $2 ORDER BY position
"""


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    position: int
    stream_type: str
    stream_id: str
    event_type: str
    raw: bytes  # the body exactly as received
    received_at: datetime
    occurred_at: datetime | None
    readmitted_from: int | None  # `tracker readmit`: the refused delivery's id in `rejected`
    # The body was archived and removed (`tracker prune-unrecognised`): `raw` is empty.
    pruned: bool = False

    @classmethod
    def of(cls, row: Record) -> LoggedEvent:
        return cls(
            row["position"],
            row["stream_type"],
            row["stream_id"],
            row["event_type"],
            bodies.unpack(row["codec"], row["raw"]),
            row["received_at"],
            row["occurred_at"],
            row["readmitted_from"],
            row["codec"] == bodies.PRUNED,
        )


def export_line(event: LoggedEvent) -> bytes:
    """One event as a line of `tracker export` (and of a prune's archive): every stored field,
    and `body`, the delivery's exact text; null with `"pruned": true` for a pruned body (its
    text is in the archive it was pruned to)."""
    line = {
        "position": event.position,
        "received_at": event.received_at,
        "stream_type": event.stream_type,
        "stream_id": event.stream_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "readmitted_from": event.readmitted_from,
        # Accepted bodies are UTF-8 JSON: exact as text.
        "body": None if event.pruned else event.raw.decode("utf-8"),
    }
    if event.pruned:
        line["pruned"] = True
    return orjson.dumps(line) + b"\n"


@dataclass(frozen=True, slots=True, order=True)
class Appended:
    position: int
    received_at: datetime  # as stored: the database's clock, or the time kept


async def append(
    conn: Connection,
    events: Sequence[NewEvent],
    received_at: datetime | Sequence[datetime] | None = None,
    *,
    restoring: bool = False,
) -> list[Appended]:
    """Append inside the caller's transaction; the events' positions and receive times are
    returned in the order given.

    Without `received_at` (the server) the database stamps the time; with it (import, readmit,
    tests) the time is kept, which only the owner of the log may do; each `readmitted_from`
    must then name a refusal received at that time, unless `restoring` another log's export.
    The positions are drawn in one statement and assigned to the rows in the order given;
    others may draw between them (a batch's positions need not be consecutive).
    """
    await bodies.ready(conn)
    codecs, stored = zip(*(bodies.pack(e.raw) for e in events), strict=True) if events else ((), ())
    columns = (
        [e.stream_type for e in events],
        [e.stream_id for e in events],
        [e.event_type for e in events],
        [e.raw for e in events],
        list(stored),
        list(codecs),
    )
    occurred = [e.occurred_at for e in events]
    if received_at is None and not any(e.readmitted_from is not None for e in events):
        rows = await conn.fetch(APPEND, *columns, occurred)
    else:
        times = received_times(
            datetime.now(UTC) if received_at is None else received_at, len(events)
        )
        readmitted = [e.readmitted_from for e in events]
        rows = await conn.fetch(APPEND_KEPT, *columns, times, occurred, readmitted, restoring)
    return sorted(Appended(row["position"], row["received_at"]) for row in rows)


def received_times(received_at: datetime | Sequence[datetime], count: int) -> list[datetime]:
    """One time for every event, or each event's own (import keeps the exported times)."""
    if isinstance(received_at, datetime):
        return [received_at] * count
    if len(received_at) != count:
        raise ValueError(f"{len(received_at)} receive times for {count} events")
    return list(received_at)


async def read_after(db: Database, after: int, limit: int) -> list[LoggedEvent]:
    return (await read_page(db, after, limit))[0]


async def read_page(
    db: Database, after: int, limit: int, budget: int | None = None
) -> tuple[list[LoggedEvent], bool]:
    """Up to `limit` events after a position, and as many as fit in `budget` bytes of bodies
    (at least one): a page of a thousand 1 MiB bodies is never built in memory. Also whether
    more follow (the page was full, or cut by the budget). The page ends at the horizon."""
    last = await horizon.read(db)
    sizes = await db.fetch("read event sizes", SIZES_AFTER, after, limit, last)
    sized = [bodies.size(r["codec"], r["stored"], bytes(r["head"])) for r in sizes]
    count = fitting(sized, PAGE_BYTES if budget is None else budget)
    if count == 0:
        return [], False
    rows = await db.fetch("read events", READ_AFTER, after, count, last)
    await bodies.ready(db, {row["codec"] for row in rows})
    return [LoggedEvent.of(row) for row in rows], len(sizes) == limit or count < len(sizes)


def fitting(sizes: list[int], budget: int) -> int:
    """How many of `sizes`, from the first, fit in `budget` (the first always does)."""
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > budget and count > 0:
            return count
    return len(sizes)


async def stream(conn: Connection, after: int) -> AsyncIterator[LoggedEvent]:
    """The whole log after a position up to the horizon, as of one snapshot, with memory flat
    in its size: an export resumed after its last position misses nothing."""
    await bodies.ready(conn)
    last = await horizon.read(conn)  # before the snapshot
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(EXPORT, after, last, prefetch=5000):
            if not bodies.knows(row["codec"]):
                await bodies.ready(conn, (row["codec"],))
            yield LoggedEvent.of(row)


class Pruned(Exception):  # noqa: N818 - a state of the event, reported as such
    """The body asked for was archived and removed (`tracker prune-unrecognised`)."""


async def read_raw(db: Database, position: int) -> bytes:
    """The body exactly as received; raises `NotFound` if there is no such event, `Pruned` if
    its body was archived away."""
    row = await db.fetchrow("read event", READ_ONE_RAW, position)
    if row is None:
        raise NotFound(f"no event at position {position}")
    if row["codec"] == bodies.PRUNED:
        raise Pruned(f"the body of the event at position {position} was pruned (archived)")
    await bodies.ready(db, (row["codec"],))
    return bodies.unpack(row["codec"], row["raw"])
