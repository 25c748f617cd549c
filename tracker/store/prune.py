"""Pruning old unrecognised bodies (`tracker prune-unrecognised`): the one way anything of the
log is ever removed, and only bodies of no type we project, each archived first.

One transaction, under a lock of its own: the bodies received before a time are read in one
snapshot, written to the archive (the same lines as `tracker export`) and fsynced; each is
recorded in `pruned_bodies` (its size and SHA-256 as received); then the events' `raw` is
emptied and `codec` set to `bodies.PRUNED`. Position, stream, type, times and `hash` stay, so
every chain and every checkpoint still verifies (sql/018_unrecognised_limits.sql). If the
commit fails, the archive holds bodies still in the log: a copy, never a loss.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tracker.store import bodies, chain
from tracker.store.database import Connection
from tracker.store.events import LoggedEvent, export_line

PRUNE_LOCK = 0x7472_6B70_726E  # "trkprn": one pruning at a time
BATCH = 1000
# Each with the hash before it in its stream (what its seal covers), from the stream index.
CANDIDATES = f"""
SELECT position, stream_type, stream_id, event_type, raw, codec, received_at, occurred_at,
       readmitted_from, hash,
       (SELECT b.hash FROM events b
        WHERE b.stream_type = e.stream_type AND b.stream_id = e.stream_id
          AND b.position < e.position
        ORDER BY b.position DESC LIMIT 1) AS previous
FROM events e
WHERE stream_type = 'unrecognised' AND codec <> {bodies.PRUNED} AND received_at < $1
ORDER BY position
"""  # noqa: S608 - a constant
RECORD = """
INSERT INTO pruned_bodies (position, size, sha256, seal, archive)
SELECT u.position, u.size, u.sha256, u.seal, $5::text
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(position, size, sha256, seal)
"""
EMPTY = f"""
UPDATE events e SET raw = '', codec = {bodies.PRUNED}
FROM pruned_bodies p WHERE p.position = e.position AND e.codec <> {bodies.PRUNED}
"""  # noqa: S608 - a constant
# A pruned body's SHA-256 as recorded, as a column of a read of `events` (looked up for pruned
# events alone): checkpoints cover a pruned body by it, the very hash one taken before computed
# from the body, so pruning changes no head; verify checks an archived body against it.
RECORDED_SHA256 = (
    "CASE WHEN codec = -1 THEN "  # bodies.PRUNED
    "(SELECT p.sha256 FROM pruned_bodies p WHERE p.position = events.position) END"
)
RECORDED_SEAL = RECORDED_SHA256.replace("p.sha256", "p.seal")
MAY_PRUNE = """
SELECT has_table_privilege('events', 'UPDATE') AND has_table_privilege('pruned_bodies', 'INSERT')
"""


class NotAllowed(Exception):  # noqa: N818 - the role's rights, reported as such
    """The role connected may not prune (the runtime role): nothing was written."""


@dataclass(frozen=True, slots=True)
class Pruned:
    events: int
    first: int | None
    last: int | None
    bytes: int  # of the bodies as received
    archive: Path
    archive_sha256: str  # of the archive file as written: keep it with the file


async def prune(conn: Connection, before: datetime, archive: Path) -> Pruned:
    """Archive, then remove, the bodies of the unrecognised events received before `before`.
    `archive` must not exist (an earlier archive is never overwritten); it is not created when
    there is nothing to prune."""
    if not await conn.fetchval(MAY_PRUNE):
        raise NotAllowed("this role may not prune the log (it needs the owner's rights)")
    written = hashlib.sha256()
    count, total, first, last = 0, 0, None, None
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", PRUNE_LOCK)
        await bodies.ready(conn)
        cursor = await conn.cursor(CANDIDATES, before)
        rows = await cursor.fetch(BATCH)
        if not rows:
            return Pruned(0, None, None, 0, archive, "")
        with archive.open("xb") as out:
            while rows:
                await bodies.ready(conn, {row["codec"] for row in rows})
                events = [LoggedEvent.of(row) for row in rows]
                for event in events:
                    line = export_line(event)
                    out.write(line)
                    written.update(line)
                hashes = [hashlib.sha256(e.raw).digest() for e in events]
                seals = [
                    chain.seal(row["previous"], event, digest, row["hash"])
                    for row, event, digest in zip(rows, events, hashes, strict=True)
                ]
                await conn.execute(
                    RECORD,
                    [e.position for e in events],
                    [len(e.raw) for e in events],
                    hashes,
                    seals,
                    str(archive),
                )
                count += len(events)
                total += sum(len(e.raw) for e in events)
                first = events[0].position if first is None else first
                last = events[-1].position
                rows = await cursor.fetch(BATCH)
            out.flush()
            os.fsync(out.fileno())
        _fsync_directory(archive.parent)
        # Only now, with every body on disk, are they removed from the log.
        await conn.execute("SET LOCAL tracker.pruning = 'on'")
        await conn.execute(EMPTY)
    return Pruned(count, first, last, total, archive, written.hexdigest())


def _fsync_directory(directory: Path) -> None:
    """The archive's name is durable too, not only its content."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
