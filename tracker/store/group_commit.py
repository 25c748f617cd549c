"""Group commit: deliveries that arrive together share one transaction and one WAL flush.

Each delivery joins a queue; a flusher takes everything queued (up to `max_batch`), records it
in a single transaction, and then answers every caller. A caller is answered only after *its*
batch committed, so 200 still means durable. While batches commit, the next one fills up:
batches grow with the load by themselves, and an idle server still commits a lone delivery at
once, without waiting for company. Up to `flushers` batches are in flight at once per process
(appends run side by side, see events.py): while one waits on PostgreSQL, the next is being
projected here, and the two cores both work.

A batch that cannot commit fails only its own callers (`Unavailable`, hence 503). Any other error
comes from one delivery: what it would write (`Unstorable`: the database refused a value, hence a
refusal kept in `rejected`), or a bug in its handling. The batch is then committed in halves, and
the failing half in halves again, so that delivery fails alone, the others still land, and a
batch of n costs about 2 log2(n) transactions more, not n.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from tracker.domain.delivery import NewEvent
from tracker.store import ingestion
from tracker.store.database import Database
from tracker.store.errors import CONTENT, Unavailable, Unstorable

logger = logging.getLogger(__name__)

# Bounds one transaction's size and time under a burst, and the stream locks it holds: each is
# a slot of PostgreSQL's shared lock table (max_locks_per_transaction x max_connections: 6,400
# by default), shared by every batch in flight in every process.
MAX_BATCH = 250
FLUSHERS = 2  # batches in flight per process: more buys nothing on two cores (bench/README.md)


@dataclass(slots=True)
class _Waiting:
    event: NewEvent
    answer: asyncio.Future[int]


@dataclass
class GroupCommit:
    database: Database
    max_batch: int = MAX_BATCH
    flushers: int = FLUSHERS
    on_commit: Callable[[int], None] = lambda _size: None  # e.g. a batch-size histogram
    on_projected: Callable[[], None] = lambda: None  # committed news for the live feeds
    _queue: list[_Waiting] = field(default_factory=list)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    _closed: bool = False

    async def append(self, event: NewEvent) -> int:
        """Append `event`; return its log position once it has committed. Its receive time is
        the database's, stamped by the append (sql/016_trust_boundaries.sql)."""
        waiting = _Waiting(event, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        if len(self._running) < self.flushers:
            self._running.add(asyncio.create_task(self._flush()))
        # A caller that goes away (client hung up) must not take the batch down with it.
        return await asyncio.shield(waiting.answer)

    async def drain(self) -> None:
        """Wait until everything queued so far has been answered (graceful shutdown)."""
        while self._running:
            await asyncio.shield(next(iter(self._running)))

    async def close(self) -> None:
        """At shutdown, once no request waits any more: finish the batches in flight, start none.

        aiohttp has answered every request by then, or cancelled it when the grace ran out, so
        whatever is still queued has nobody to answer. Committing it would take one more
        transaction per batch, each up to TRACKER_DB_TIMEOUT if the database stalls, and keep
        the process past its grace (the `--workers` supervisor kills at grace + 5 s). Dropping
        it is safe: its sender got no answer and delivers it again.
        """
        self._closed = True
        await self.drain()

    async def _flush(self) -> None:
        try:
            while self._queue and not self._closed:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._commit(batch)
        finally:
            # No await since the queue was found empty: an append made meanwhile saw this
            # flusher running, and one made from now on sees it gone and starts another.
            self._running.difference_update({asyncio.current_task()})
            if self._closed or not self._running:  # else the others go on with the queue
                queued, self._queue = self._queue, []  # empty, unless closed or interrupted
                for waiting in queued:
                    _fail(waiting, Unavailable("the server stopped before this append"))

    async def _commit(self, batch: list[_Waiting]) -> None:
        try:
            async with self.database.transaction("append") as conn:
                positions = await ingestion.ingest(conn, [w.event for w in batch])
        except Unavailable as error:
            for waiting in batch:
                _fail(waiting, Unavailable(str(error)))
            return
        except Exception as error:  # noqa: BLE001 - passed on to the one caller it belongs to
            if len(batch) > 1:
                logger.warning(
                    "a batch of %d failed (%s: %s); committing its halves apart",
                    len(batch),
                    type(error).__name__,
                    error,
                )
                middle = len(batch) // 2
                await self._commit(batch[:middle])
                await self._commit(batch[middle:])
            elif isinstance(error, CONTENT):
                refused = f"{type(error).__name__}: {error}"
                logger.warning("the database refused a delivery: %s", refused)
                _fail(batch[0], Unstorable(refused))
            else:
                _fail(batch[0], error)  # a bug: the handler's error middleware logs it
            return
        except BaseException as error:  # cancelled at shutdown: nobody may wait forever
            for waiting in batch:
                _fail(waiting, Unavailable(f"the append was interrupted: {error!r}"))
            raise
        self._committed(batch, positions)

    def _committed(self, batch: list[_Waiting], positions: list[int]) -> None:
        self.on_commit(len(batch))
        if ingestion.projected([w.event for w in batch]):
            self.on_projected()
        for waiting, position in zip(batch, positions, strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(position)


def _fail(waiting: _Waiting, error: BaseException) -> None:
    if not waiting.answer.done():
        waiting.answer.set_exception(error)
