"""The followers' horizon: how far the log can be paged by position without skipping an event.

Appends run side by side (sql/013_parallel_append.sql), and `position` comes from a sequence:
values are handed out when drawn, not when their transaction commits. Writer A draws 41, writer
B draws 42, B commits first. A follower paging `WHERE position > $after` would read 42, move its
cursor past 41, and never see 41 once A commits (DESIGN.md invariant 5; Marten's async daemon
and Emmett both shipped that bug). So a page stops at the horizon:

    H = min(D, M)

D is the last position drawn, read first; M is the least in-flight marker, read second, from
pg_locks (`tracker_horizon()` reads them in that order). An append publishes its marker, a
shared advisory lock whose key holds the last position drawn before its own, then draws its
positions, and its transaction ends (commit or rollback) before the lock goes.

Claim: every event at a position p <= H is visible to any snapshot taken after H was read, or
will never exist. Proof: let writer W have drawn p. p <= H <= D, so W drew p before D was read,
and W's marker went up before W drew p, so before D was read, so before the markers were read.
When the markers were read, either W still held its marker, and then M <= (W's marker) < p,
contradicting p <= H; or W had released it, which PostgreSQL does only after W's commit is
visible to new snapshots (or after W rolled back). So W's outcome was settled before the
follower's snapshot: p is visible to it, or was rolled back and never will be. (A position
drawn after D was read is above D, hence above H.)

Every ingredient matters, and tests fail without each: the marker must go up before the draw
and hold a number below it (tests/integration/test_log_store.py holds an append open and asks
for the horizon), the follower must bound its page by H (a late commit then stays invisible
below a committed event), and H must be read before the page's snapshot is taken: a separate
statement, never a subquery of the page (one statement takes its snapshot first).

Paging one stream's events (a device's history) needs no horizon: appends to a stream take its
lock before drawing and hold it to commit, so a stream's events commit in position order.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tracker.store.database import Connection, Database

HORIZON = "SELECT tracker_horizon()"
COMMITTED = "SELECT coalesce(max(position), 0) FROM events"
# The appends in flight that hold the horizon back, oldest first, as an operator would look
# for them (only markers of roles that may append count: sql/016_trust_boundaries.sql).
HOLDERS = """
SELECT l.pid, a.usename, a.state, coalesce(a.xact_start, a.backend_start) AS since,
       ((l.classid::bigint & 65535) << 32) | l.objid::bigint AS marker
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
  AND l.classid::bigint >> 16 = 29300
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND has_function_privilege(a.usesysid, 'tracker_append(text[], text[], text[], bytea[],
      bytea[], smallint[], timestamptz[])'::regprocedure, 'EXECUTE')
ORDER BY marker
"""
MARKER = 0x7274  # an in-flight marker's top 16 bits (sql/definitions/12_tracker_append_kept.sql)


async def read(db: Database | Connection) -> int:
    """The horizon now. Take the snapshot that pages with it afterwards, never before."""
    row = await (
        db.fetchrow("read the horizon", HORIZON)
        if isinstance(db, Database)
        else db.fetchrow(HORIZON)
    )
    return int(row[0]) if row else 0


@dataclass(frozen=True, slots=True)
class Behind(Exception):  # noqa: N818 - reads as "the horizon is behind"
    """Events above the horizon were committed and it did not catch up: an append of the
    tracker's own roles has been in flight all that time."""

    horizon: int
    committed: int
    holders: tuple[str, ...]

    def __str__(self) -> str:
        held = "; ".join(self.holders) or "an append that has just ended"
        return (
            f"the log is committed up to position {self.committed:,} but can be read without "
            f"gaps only up to {self.horizon:,}: appends in flight hold it back ({held})"
        )


async def settled(conn: Connection, wait: float = 5.0) -> int:
    """The horizon once it covers every event committed when this was called, waiting up to
    `wait` seconds for appends in flight to end; `Behind` if it does not (a statement covering
    less than the log holds must never be signed in silence)."""
    committed = int(await conn.fetchval(COMMITTED))
    deadline = time.monotonic() + wait
    while (last := await read(conn)) < committed:
        if time.monotonic() > deadline:
            holders = tuple(
                f"pid {row['pid']} ({row['usename']}, {row['state']}, since "
                f"{row['since']:%Y-%m-%d %H:%M:%S%z}, marker {row['marker']:,})"
                for row in await conn.fetch(HOLDERS)
            )
            raise Behind(last, committed, holders)
        await asyncio.sleep(0.05)
    return last
