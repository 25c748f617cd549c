"""The latest replay's progress, written by `tracker replay` and read by /metrics."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.store.database import Connection, Database

START = """
INSERT INTO replay_progress (mode, started_at, events_done, events_total)
VALUES ($1, now(), 0, $2)
ON CONFLICT (only_row) DO UPDATE SET mode = $1, started_at = now(), events_done = 0,
    events_total = $2, finished_at = NULL, pause_ms = NULL, drift = NULL
"""
ADVANCE = "UPDATE replay_progress SET events_done = $1, events_total = greatest(events_total, $1)"
FINISH = (
    "UPDATE replay_progress SET events_done = $1, finished_at = now(), pause_ms = $2, drift = $3"
)
READ = "SELECT * FROM replay_progress"


@dataclass(frozen=True, slots=True)
class Progress:
    mode: str
    started_at: datetime
    events_done: int
    events_total: int
    finished_at: datetime | None
    pause_ms: float | None
    drift: int | None


async def start(conn: Connection, mode: str, total: int) -> None:
    await conn.execute(START, mode, total)


async def advance(conn: Connection, done: int) -> None:
    await conn.execute(ADVANCE, done)


async def finish(conn: Connection, done: int, pause_ms: float | None, drift: int | None) -> None:
    await conn.execute(FINISH, done, pause_ms, drift)


async def latest(db: Database) -> Progress | None:
    row = await db.fetchrow("read replay progress", READ)
    return (
        None if row is None else Progress(**{k: v for k, v in dict(row).items() if k != "only_row"})
    )
