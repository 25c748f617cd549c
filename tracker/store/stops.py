"""The StopBatchTask calls that firing guards owe (sql/021_guards.sql, `guard_stops`): written
with the firing (store/alerting.py), claimed by a `Stopper` (tracker/alerts/stopper.py) with a
lease, so a process that dies mid-call leaves its row to another, and done once the outcome is
in the log. A call may so be made twice; IoTDA refuses a second stop of a stopping task, and
the outcome recorded is then the refusal, with the first one's effect already there."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.domain.notifications import AlertStopped, Track
from tracker.store import alert_log
from tracker.store.database import Database

CLAIM = """
WITH due AS (
    SELECT id FROM guard_stops WHERE state = 'pending' AND next_at <= now()
    ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED
)
UPDATE guard_stops s SET next_at = now() + make_interval(secs => $2)
FROM due WHERE s.id = due.id
RETURNING s.id, s.guard, s.operation_id, s.track, s.number, s.attempts, s.created_at
"""
AGAIN = """
UPDATE guard_stops SET attempts = attempts + 1, next_at = now() + make_interval(secs => $3)
WHERE id = $1 AND state = 'pending' AND attempts = $2
"""
DONE = """
UPDATE guard_stops SET attempts = attempts + 1, state = 'done', done_at = now()
WHERE id = $1 AND state = 'pending' AND attempts = $2
"""
SOONEST = """
SELECT extract(epoch FROM min(next_at) - now()) AS due FROM guard_stops WHERE state = 'pending'
"""


@dataclass(frozen=True, slots=True)
class Owed:
    id: str
    guard: str
    operation_id: str  # the IoTDA task
    track: Track
    number: int
    attempts: int  # as claimed: a late answer changes nothing once another has it
    created_at: datetime


async def claim(db: Database, limit: int, lease: float) -> list[Owed]:
    rows = await db.fetch("claim guard stops", CLAIM, limit, lease)
    return [Owed(**dict(row)) for row in rows]


async def again(db: Database, owed: Owed, delay: float) -> None:
    async with db.transaction("retry a guard stop") as conn:
        await conn.execute(AGAIN, owed.id, owed.attempts, delay)


async def done(db: Database, owed: Owed, outcome: AlertStopped) -> None:
    """The outcome in the log and the alert, and the call no longer owed, in one transaction."""
    async with db.transaction("record a guard stop") as conn:
        if (await conn.execute(DONE, owed.id, owed.attempts)).endswith(" 1"):
            await alert_log.record_stop(conn, outcome)


async def soonest(db: Database) -> float | None:
    """Seconds until the next call is due (negative: overdue); None: none owed."""
    row = await db.fetchrow("guard stops due", SOONEST)
    return None if row is None or row["due"] is None else float(row["due"])
