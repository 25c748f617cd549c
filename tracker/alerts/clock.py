"""The guards' clock: what time alone makes true. A rollout whose devices sit busy fires
`stuck_above` once enough of them have sat long enough, and `silent_for` once nothing happened
for long enough, though no delivery comes to say so. So every `every` seconds, each rollout with
busy devices is read under every guard, a page per transaction (store/busy.py). Every process
of a deployment runs one, and one at a time passes (an advisory lock): a change is decided
once, under its rollout's row lock."""

from __future__ import annotations

import asyncio
import logging

from tracker import metrics
from tracker.store import alert_log, busy
from tracker.store.database import Database
from tracker.store.errors import Unavailable

log = logging.getLogger(__name__)

EVERY = 10.0  # seconds between two passes: how late a stuck or silent alert may fire
PAGE = 100  # busy rollouts read per transaction


class Clock:
    def __init__(self, db: Database, every: float = EVERY, page: int = PAGE) -> None:
        self.db, self.every, self.page = db, every, page
        self.after: busy.Cursor = busy.START  # where the pass goes on: an error resumes it

    async def run(self) -> None:
        """Pass, then wait, until cancelled. An outage, or a bug, waits for the next turn,
        which goes on where this one stopped: a page that fails starves no other."""
        while True:
            try:
                await self.tick()
            except Unavailable as error:
                log.warning("guards: cannot read busy rollouts: %s", error)
            except Exception:
                log.exception("guards: the clock's pass failed after %s", self.after)
                metrics.GUARD_ERRORS.inc()
            await asyncio.sleep(self.every)

    async def tick(self) -> int:
        """One pass over every busy rollout (unless another process's clock is passing);
        how many alerts changed."""
        changed = 0
        while True:
            try:
                async with self.db.transaction("guards' clock") as conn:
                    count, cursor = await busy.read_page(conn, self.after, self.page)
            except busy.Busy:
                return changed
            if count:
                await alert_log.announce(self.db)  # committed: send and stop now
            changed += count
            if cursor is None:
                self.after = busy.START
                return changed
            self.after = cursor
