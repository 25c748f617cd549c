"""The guards' clock: what time alone makes true. A rollout whose devices sit busy fires
`stuck_above` once enough of them have sat long enough, and `silent_for` once nothing happened
for long enough, though no delivery comes to say so. So every `every` seconds, each rollout with
busy devices is read under every guard, a page per transaction (store/alerting.py,
`read_busy`). Every process of a deployment may run one: a rollout's row is locked while it is
read, and a change is decided once."""

from __future__ import annotations

import asyncio
import logging

from tracker.store import alerting
from tracker.store.database import Database
from tracker.store.errors import Unavailable

log = logging.getLogger(__name__)

EVERY = 10.0  # seconds between two readings: how late a stuck or silent alert may fire
PAGE = 100  # rollouts per transaction: their rows are locked for as long as it lasts


class Clock:
    def __init__(self, db: Database, every: float = EVERY, page: int = PAGE) -> None:
        self.db, self.every, self.page = db, every, page

    async def run(self) -> None:
        """Read, then wait, until cancelled; a database outage waits for the next turn."""
        while True:
            try:
                await self.tick()
            except Unavailable as error:
                log.warning("guards: cannot read busy rollouts: %s", error)
            await asyncio.sleep(self.every)

    async def tick(self) -> int:
        """Every busy rollout read once; how many alerts changed."""
        changed, after = 0, alerting.START
        while True:
            async with self.db.transaction("guards' clock") as conn:
                count, cursor = await alerting.read_busy(conn, after, self.page)
            changed += count
            if cursor is None:
                return changed
            after = cursor
