"""The live feed's source: transitions (and results) after a position, and a wake-up when new
ones commit.

Why paging transitions by position never skips one: a transition is written in the same
transaction as its event, at its event's position, so a page that ends at the log's horizon
(horizon.py) is complete: no transition at or below it can still commit.

The wake-up is a NOTIFY sent after the append commits, in a transaction of its own
(`Announcer`). Inside the append it would serialise every append's commit: PostgreSQL takes
one lock per database from a notifying transaction's pre-commit to the end of its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from tracker.store import horizon
from tracker.store.database import Database
from tracker.store.errors import TRANSIENT, Unavailable

log = logging.getLogger(__name__)

# The listener must outlive anything the database does to it: it retries every second.
_RETRY: tuple[type[BaseException], ...] = (*TRANSIENT, asyncpg.PostgresError)

CHANNEL = "tracker_log"
NOTIFY = "SELECT pg_notify('tracker_log', '')"  # delivered when the appending transaction commits

# One statement per filter, each walking one index by position: the whole fleet's transitions
# (`*_by_position`), one operation's (`device_transitions_by_operation`) or one device's (its
# key). A catch-all `$2 IS NULL OR operation_id = $2` would read every transition since the
# position to find one operation's.
DEVICE_SIDE = """
SELECT position, 'device' AS stream_type, device_id AS stream_id, track,
       from_state AS from_value, to_state AS to_value, valid, applied,
       operation_id, sub_operation_id, NULL::timestamptz AS event_time, received_at,
       kind, inconsistent, result::text AS result, NULL::text AS request_id, reason,
       NULL::text AS source
FROM device_transitions WHERE position > $1 AND position <= $3 {where} ORDER BY position LIMIT $2
"""
TASK_SIDE = """
SELECT position, 'task', task_id, NULL, from_status, to_status, valid, applied, NULL, NULL,
       event_time, received_at, 'status', false, NULL, request_id, NULL, source
FROM task_transitions WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2
"""
# An alert's change: its guard as the stream, its state as where it went, the reading in
# `result` (tracker/http/stream.py unpacks it).
ALERT_SIDE = """
SELECT position, 'alert', guard, track, NULL, state, true, true, operation_id, NULL, at,
       received_at, 'alert', false,
       json_build_object('number', number, 'app_id', app_id, 'value', value,
                         'threshold', threshold)::text,
       NULL, NULL, NULL
FROM alert_transitions WHERE position > $1 AND position <= $3 {where} ORDER BY position LIMIT $2
"""
PAGE = (
    f"SELECT * FROM (({DEVICE_SIDE.format(where='')}) UNION ALL ({TASK_SIDE}) "  # noqa: S608
    f"UNION ALL ({ALERT_SIDE.format(where='')})) AS feed ORDER BY position LIMIT $2"
)
OPERATION_PAGE = (
    f"SELECT * FROM (({DEVICE_SIDE.format(where='AND operation_id = $4')}) "  # noqa: S608
    f"UNION ALL ({ALERT_SIDE.format(where='AND operation_id = $4')})) AS feed "
    "ORDER BY position LIMIT $2"
)
DEVICE_PAGE = DEVICE_SIDE.format(where="AND device_id = $4")
BOTH_PAGE = DEVICE_SIDE.format(where="AND device_id = $4 AND operation_id = $5")


@dataclass(frozen=True, slots=True)
class FeedItem:
    position: int
    stream_type: str
    stream_id: str
    track: str | None
    from_value: str | None
    to_value: str | None
    valid: bool
    applied: bool
    operation_id: str | None
    sub_operation_id: str | None
    event_time: datetime | None
    received_at: datetime
    kind: str  # 'state' or 'result' (a device's), 'status' (a task's), 'alert'

    inconsistent: bool
    result: str | None  # kind 'result': the result; 'alert': the reading (as JSON)
    request_id: str | None
    reason: str | None  # a device transition not applied: why
    source: str | None  # a task's: push or reconciliation


@dataclass(frozen=True, slots=True)
class Filter:
    operation_id: str | None = None  # only device transitions under this operation
    device_id: str | None = None  # only this device's transitions


async def after(db: Database, position: int, only: Filter, limit: int) -> list[FeedItem]:
    """Up to `limit` transitions after `position`, up to the log's horizon."""
    sql, given = PAGE, [only.device_id, only.operation_id]
    if only.device_id is not None:
        sql = DEVICE_PAGE if only.operation_id is None else BOTH_PAGE
    elif only.operation_id is not None:
        sql = OPERATION_PAGE
    last = await horizon.read(db)  # before the page's snapshot
    filters = (v for v in given if v is not None)
    rows = await db.fetch("read feed", sql, position, limit, last, *filters)
    return [FeedItem(**dict(row)) for row in rows]


async def announce(db: Database) -> None:
    """After an append committed: wake every follower (of every process)."""
    await db.fetchrow("announce", NOTIFY)


class Announcer:
    """Wakes the followers after appends commit, one NOTIFY at a time per process.

    `poke` after each commit that projected something: a NOTIFY goes out at once if none is on
    its way, else one more right after it (covering every commit poked meanwhile). A follower
    reads after it is woken, so one NOTIFY sent after a commit is enough for that commit.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._again = False
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._send(), name="feed-announcer")
        else:
            self._again = True

    async def drain(self) -> None:
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _send(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    await announce(self.db)
                except Unavailable as error:  # followers still poll on their timeout
                    log.debug("could not wake the followers: %s", error)
                if not self._again:
                    return
        finally:
            self._task = None


class Listener:
    """One LISTEN connection per process, waking the followers when something commits.

    A follower takes a ticket before it reads and waits on that ticket: a commit that lands
    between its read and its wait has already set the ticket, so no wake-up is ever missed. If
    the connection is lost (an outage), followers still poll on their timeout, and the
    listener reconnects by itself.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._ticket = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="feed-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def ticket(self) -> asyncio.Event:
        return self._ticket

    def _wake(self, *_: object) -> None:
        ticket, self._ticket = self._ticket, asyncio.Event()
        ticket.set()

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.url, timeout=5)
            except _RETRY as error:
                log.debug("feed listener cannot connect yet: %s", error)
                await asyncio.sleep(1)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._wake)
                self._wake()  # something may have committed while we were away
                await lost.wait()
            except _RETRY as error:
                log.debug("feed listener lost its connection: %s", error)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)
            await asyncio.sleep(1)


async def follow(
    db: Database, listener: Listener, position: int, only: Filter, idle: float = 1.0
) -> AsyncIterator[FeedItem | None]:
    """Every matching transition after `position`, then new ones as they commit, forever.

    Yields None after `idle` seconds without news, so the caller can send a keep-alive or stop.
    """
    while True:
        ticket = listener.ticket()
        page = await after(db, position, only, 500)
        for item in page:
            yield item
            position = item.position
        if len(page) < 500:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ticket.wait(), idle)
            yield None
