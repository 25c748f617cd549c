"""The IoTDA reconciler's reads and its own bookkeeping (tracker/iotda/reconciler.py).

- What the log says now of a task and of a page of its subtasks (`held_task`, `held_members`):
  one primary-key read and one read of at most a page of member keys, whatever the fleet.
- Where it is with each task (`iotda_sweeps`, sql/019): a restart resumes a sweep, not starts
  it again. Not derived from the log: losing it costs requests, never truth.
- Where it is in each walk of a task list (`iotda_listings`, sql/023), likewise: a walk cut
  short resumes.
- One reconciler at a time (`exclusive`): a session advisory lock, so that two processes never
  spend the tenant's request budget twice, and a device's observations are appended in the
  order they were made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import orjson

from tracker.domain.notifications import Track
from tracker.domain.task import Progress
from tracker.iotda.observe import HeldMember, HeldTask
from tracker.store.database import Database, Record
from tracker.store.errors import unavailable_on_failure

LOCK = 0x10DA_5EC0  # pg_advisory_lock's key for the reconciler (any constant of our own)

HELD_TASK = "SELECT status, progress FROM tasks WHERE task_id = $1"
HELD_MEMBERS = """
SELECT device_id, state, error_code, result_desc FROM operation_devices
WHERE operation_id = $1 AND track = $2 AND device_id = ANY($3::text[])
"""
# Upgrade tasks the log knows whose status differs from the one the reconciler last read (new
# ones: none read yet): a push said something, so they are due now. Tasks are few beside
# devices (one per rollout); the anti-join reads them all, once a discovery round.
PUSHED_NEWS = """
SELECT t.task_id, t.app_id, t.task_type, t.status FROM tasks t
LEFT JOIN iotda_sweeps s USING (task_id)
WHERE s.task_id IS NULL OR s.status IS DISTINCT FROM t.status
"""
DUE = """
SELECT * FROM iotda_sweeps WHERE next_at <= $1
ORDER BY status IN ('Success', 'PartialSuccess', 'Fail', 'Stopped'), last_activity DESC, task_id
LIMIT $2
"""
BEHIND = "SELECT count(*) FROM iotda_sweeps WHERE next_at <= $1"
LISTED = "SELECT task_id, status FROM iotda_sweeps WHERE task_id = ANY($1::text[])"
LISTING = "SELECT marker, walked_at FROM iotda_listings WHERE app_id = $1 AND task_type = $2"
SAVE_LISTING = """
INSERT INTO iotda_listings (app_id, task_type, marker, walked_at, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (app_id, task_type) DO UPDATE
SET marker = excluded.marker, walked_at = excluded.walked_at, updated_at = excluded.updated_at
"""
# New tasks are due now; `revive`: a known one too (a push said it moved: read it again, to
# its end and once more after).
FOUND = """
INSERT INTO iotda_sweeps (task_id, app_id, task_type, status, last_activity, next_at, updated_at)
SELECT *, $5::timestamptz, $5::timestamptz, $5::timestamptz
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
ON CONFLICT (task_id) DO {}
"""
REVIVE = """UPDATE SET
    app_id = coalesce(iotda_sweeps.app_id, excluded.app_id),
    task_type = CASE WHEN excluded.task_type = '' THEN iotda_sweeps.task_type
                     ELSE excluded.task_type END,
    status = excluded.status, next_at = excluded.next_at, final_reads = 0,
    last_activity = excluded.last_activity, updated_at = excluded.updated_at"""
ONE = "SELECT * FROM iotda_sweeps WHERE task_id = $1"
SAVE = """
UPDATE iotda_sweeps SET status = $2, marker = $3, swept = $4, started_final = $5, sweeps = $6,
    final_reads = $7, last_activity = $8, next_at = $9, updated_at = $10
WHERE task_id = $1
"""


@dataclass(slots=True)
class Sweep:
    """Where the reconciler is with one task."""

    task_id: str
    app_id: str | None
    task_type: str
    status: str
    marker: str | None  # the full sweep resumes after this detail; None: from the start
    swept: int  # details read in the current sweep
    started_final: bool  # the current sweep began after the task had ended
    sweeps: int  # full sweeps completed
    final_reads: int  # full sweeps completed that began after the task had ended
    last_activity: datetime
    next_at: datetime | None  # None: never again (ended and read in full since, or gone)


async def held_task(db: Database, task_id: str) -> HeldTask | None:
    row = await db.fetchrow("read task", HELD_TASK, task_id)
    if row is None:
        return None
    progress = None if row["progress"] is None else Progress(**orjson.loads(row["progress"]))
    return HeldTask(row["status"], progress)


async def held_members(
    db: Database, task_id: str, track: Track, targets: Iterable[str]
) -> dict[str, HeldMember]:
    rows = await db.fetch("read members", HELD_MEMBERS, task_id, track, list(targets))
    return {
        row["device_id"]: HeldMember(row["state"] or None, row["error_code"], row["result_desc"])
        for row in rows
    }


async def pushed_news(db: Database) -> list[tuple[str, str | None, str, str]]:
    """(task_id, app_id, task_type, status) of the log's tasks the reconciler has not read as
    they are now."""
    rows = await db.fetch("find pushed tasks", PUSHED_NEWS)
    return [(r["task_id"], r["app_id"] or None, r["task_type"], r["status"]) for r in rows]


async def statuses(db: Database, task_ids: list[str]) -> dict[str, str]:
    """The status each of these tasks had when the reconciler last met it (read, listed, or
    pushed), for those it knows."""
    return {r["task_id"]: r["status"] for r in await db.fetch("find known tasks", LISTED, task_ids)}


@dataclass(slots=True)
class Listing:
    """Where the reconciler is in its walk of one task list (ListBatchTasks, newest first)."""

    marker: str | None  # the walk resumes after this task; None: it starts from the top
    walked_at: datetime | None  # when a walk last reached the end; None: never yet


async def listing(db: Database, app_id: str | None, task_type: str) -> Listing:
    row = await db.fetchrow("read listing", LISTING, app_id or "", task_type)
    return Listing(None, None) if row is None else Listing(row["marker"], row["walked_at"])


async def save_listing(
    db: Database, app_id: str | None, task_type: str, walk: Listing, now: datetime
) -> None:
    async with db.transaction("save listing") as conn:
        await conn.execute(SAVE_LISTING, app_id or "", task_type, walk.marker, walk.walked_at, now)


async def found(
    db: Database,
    tasks: list[tuple[str, str | None, str, str]],
    now: datetime,
    *,
    revive: bool,
) -> None:
    """Tasks to read (now): new ones, and with `revive` known ones read again."""
    if not tasks:
        return
    ids, apps, types, statuses = (list(column) for column in zip(*tasks, strict=True))
    sql = FOUND.format(REVIVE if revive else "NOTHING")
    async with db.transaction("record tasks found") as conn:
        await conn.execute(sql, ids, apps, types, statuses, now)


async def sweep(db: Database, task_id: str) -> Sweep | None:
    row = await db.fetchrow("read sweep", ONE, task_id)
    return None if row is None else _sweep(row)


async def due(db: Database, now: datetime, limit: int) -> list[Sweep]:
    """The tasks due for a read: active ones first, the most recently active first."""
    return [_sweep(r) for r in await db.fetch("read due tasks", DUE, now, limit)]


def _sweep(r: Record) -> Sweep:
    return Sweep(
        r["task_id"],
        r["app_id"],
        r["task_type"],
        r["status"],
        r["marker"],
        r["swept"],
        r["started_final"],
        r["sweeps"],
        r["final_reads"],
        r["last_activity"],
        r["next_at"],
    )


async def behind(db: Database, now: datetime) -> int:
    row = await db.fetchrow("count due tasks", BEHIND, now)
    return 0 if row is None else int(row[0])


async def save(db: Database, sweep: Sweep, now: datetime) -> None:
    async with db.transaction("save sweep") as conn:
        await conn.execute(
            SAVE,
            sweep.task_id,
            sweep.status,
            sweep.marker,
            sweep.swept,
            sweep.started_final,
            sweep.sweeps,
            sweep.final_reads,
            sweep.last_activity,
            sweep.next_at,
            now,
        )


class Busy(Exception):  # noqa: N818 - reads as "another reconciler is busy"
    """Another process holds the reconciler's lock."""


@asynccontextmanager
async def exclusive(db: Database) -> AsyncIterator[asyncpg.Connection]:
    """Hold the reconciler's lock on a connection of its own for as long as the block runs;
    raises `Busy` if another process holds it. Closing the connection (a crash) frees it."""
    with unavailable_on_failure("connect"):
        conn = await asyncpg.connect(db.url, timeout=db.timeout)
    try:
        with unavailable_on_failure("lock the reconciler"):
            taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK)
        if not taken:
            raise Busy("another process is reconciling with IoTDA (it holds the lock)")
        yield conn
    finally:
        await conn.close()
