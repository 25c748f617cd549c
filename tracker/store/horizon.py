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

from tracker.store.database import Connection, Database

HORIZON = "SELECT tracker_horizon()"
MARKER = 0x7274  # the top 16 bits of an in-flight marker's key (sql/013_parallel_append.sql)


async def read(db: Database | Connection) -> int:
    """The horizon now. Take the snapshot that pages with it afterwards, never before."""
    row = await (
        db.fetchrow("read the horizon", HORIZON)
        if isinstance(db, Database)
        else db.fetchrow(HORIZON)
    )
    return int(row[0]) if row else 0
