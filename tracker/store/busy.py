"""The guards' clock in the store: every rollout that still has busy devices, read a page at a
time under every guard, for what time alone makes true (stuck, silence) and for guards written
since the rollout last moved.

A page is first decided without a lock, which blocks no append; only the rollouts whose alerts
would change are then locked (skipping any an append holds: that append decides them) and
decided again under the lock, and recorded. One clock runs at a time in a deployment: each page
takes a transaction-scoped advisory lock, and a process that finds it taken leaves the turn to
the one holding it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tracker.store import alerting, guards
from tracker.store.database import Connection

CLOCK_LOCK = 0x7472_6B63_6C6B  # "trkclk"
TRY_CLOCK = "SELECT pg_try_advisory_xact_lock($1)"
# Rollouts with devices still busy, by the `operations_busy` index, unlocked.
BUSY_PAGE = """
SELECT operation_id, track, last_activity_at FROM operations
WHERE downloading + downloaded + updating + waitting + processing + fail_wait_retry > 0
  AND (last_activity_at, operation_id COLLATE "C", track) > ($1, $2 COLLATE "C", $3)
ORDER BY last_activity_at, operation_id COLLATE "C", track
LIMIT $4
"""
# The rows of those rollouts that no append holds, locked in key order (as alert_log's).
LOCK_FREE = """
SELECT operation_id, track FROM operations
WHERE (operation_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY operation_id, track
FOR UPDATE SKIP LOCKED
"""
Cursor = tuple[datetime, str, str]
START: Cursor = (datetime.min.replace(tzinfo=UTC), "", "")


class Busy(Exception):  # noqa: N818 - reads as "the clock is busy elsewhere"
    """Another process holds the clock's turn."""


async def read_page(conn: Connection, after: Cursor, limit: int) -> tuple[int, Cursor | None]:
    """Decide and record the alerts of a page of busy rollouts, in the caller's transaction:
    how many changed, and where the next page starts (None: that was the last). Raises `Busy`
    if another process's clock is reading."""
    if not await conn.fetchval(TRY_CLOCK, CLOCK_LOCK):
        raise Busy
    watching = await guards.all_guards(conn)
    if not watching:
        return 0, None
    rows = await conn.fetch(BUSY_PAGE, *after, limit)
    keys = [(r["operation_id"], r["track"]) for r in rows]
    looked = await alerting.evaluate(conn, keys, watching, timed=True, record=False)
    changed = 0
    if looked:
        moving = sorted({(c.operation_id, c.track) for c in looked})
        locked = await conn.fetch(LOCK_FREE, [k[0] for k in moving], [k[1] for k in moving])
        mine = [(r["operation_id"], r["track"]) for r in locked]
        changed = len(await alerting.evaluate(conn, mine, watching, timed=True))
    last = rows[-1] if len(rows) == limit else None
    return changed, (
        None if last is None else (last["last_activity_at"], last["operation_id"], last["track"])
    )
