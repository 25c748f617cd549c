"""StopBatchTask for the firing guards that ask for it (`stop_task`): each call owed is made
once its firing committed, through the reconciler's client (tracker/iotda/api.py), and what came
of it is recorded in the log and the alert (`alert.stopped`): "stopping" (IoTDA took it), or
"refused" (IoTDA said no: the task had ended, say), or "failed" (no answer before `give_up`, or
no IoTDA credentials here). Throttling and outages are retried with backoff until then."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tracker import metrics
from tracker.domain.notifications import AlertStopped, StopOutcome
from tracker.store import alerting, notices, stops
from tracker.store.database import Database
from tracker.store.errors import Unavailable
from tracker.webhooks.deliverer import backoff

if TYPE_CHECKING:  # it loads Huawei's SDK
    from tracker.iotda.api import PlatformApi

log = logging.getLogger(__name__)

GIVE_UP = 600.0  # seconds after the firing: a stop that late is no longer the one asked for
LEASE = 120.0  # seconds a claimed call stays hidden from other processes
POLL = 5.0  # seconds between looks when nothing is due (a firing also wakes it: `wake`)
NO_CREDENTIALS = "IoTDA is not configured here (TRACKER_IOTDA_*): the task was not stopped"


class Stopper:
    def __init__(
        self,
        db: Database,
        platform: PlatformApi | None,
        *,
        give_up: float = GIVE_UP,
        base: float = 1.0,
    ) -> None:
        self.db, self.platform, self.give_up, self.base = db, platform, give_up, base
        self.wake = asyncio.Event()  # set when a firing owes a call (store/alerting.py notifies)

    async def run(self) -> None:
        listening = asyncio.create_task(
            notices.listen(self.db.url, alerting.STOPS_CHANNEL, self.wake, POLL)
        )
        try:
            await self._loop()
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                wait = await self.round()
            except Unavailable as error:
                log.warning("guards: cannot claim the stops owed: %s", error)
                wait = POLL
            try:
                async with asyncio.timeout(wait):
                    await self.wake.wait()
            except TimeoutError:
                pass
            self.wake.clear()

    async def round(self) -> float:
        """Make the calls due; seconds until the next one is."""
        for owed in await stops.claim(self.db, 10, LEASE):
            await self._call(owed)
        due = await stops.soonest(self.db)
        return POLL if due is None else min(POLL, max(due, 0.05))

    async def _call(self, owed: stops.Owed) -> None:
        from tracker.iotda import api  # noqa: PLC0415 - it loads Huawei's SDK

        outcome: StopOutcome
        detail: str | None
        if self.platform is None:
            outcome, detail = "failed", NO_CREDENTIALS
        else:
            try:
                answer = await self.platform.stop_task(owed.operation_id)
            except (api.Throttled, api.Unavailable) as error:
                late = (datetime.now(UTC) - owed.created_at).total_seconds() >= self.give_up
                if not late:
                    await stops.again(self.db, owed, backoff(owed.attempts + 1, self.base, 60.0))
                    return
                outcome, detail = "failed", f"gave up after {owed.attempts + 1} attempts: {error}"
            except api.PlatformError as error:
                outcome, detail = "refused", str(error)
            else:
                # IoTDA answers a whole task's stop with no targets: nothing more to say.
                said = answer.document.get("targets")
                outcome = "stopping"
                detail = answer.raw.decode("utf-8", "replace") if said else None
        log.info("guards: stop of task %s for %s: %s", owed.operation_id, owed.id, outcome)
        metrics.GUARD_STOPS.labels(outcome).inc()
        stopped = AlertStopped(
            guard=owed.guard,
            operation_id=owed.operation_id,
            track=owed.track,
            number=owed.number,
            outcome=outcome,
            detail=None if detail is None else detail[:4096],
            at=datetime.now(UTC),
        )
        await stops.done(self.db, owed, stopped)
