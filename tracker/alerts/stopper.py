"""StopBatchTask for the firing guards that ask for it (`stop_task`): each call owed is made
once its firing committed, through the reconciler's client (tracker/iotda/api.py), and what came
of it is recorded in the log and the alert (`alert.stopped`): "stopping" (IoTDA took it),
"refused" (IoTDA said no: the task had ended, say), "unconfirmed" (IoTDA's own counters of the
task did not show the condition: nothing was stopped), or "failed" (no answer before `give_up`,
or no IoTDA credentials here). Throttling and outages are retried with backoff until then."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from tracker import metrics
from tracker.domain.guards import confirmed
from tracker.domain.notifications import AlertStopped, StopOutcome, TaskProgress
from tracker.store import alert_log, feed, guards, notices, stops
from tracker.store.database import Database
from tracker.store.errors import Unavailable
from tracker.webhooks.deliverer import backoff

if TYPE_CHECKING:  # it loads Huawei's SDK
    from tracker.iotda.api import PlatformApi
    from tracker.iotda.budget import Budget

log = logging.getLogger(__name__)

GIVE_UP = 600.0  # seconds after the firing: a stop that late is no longer the one asked for
LEASE = 120.0  # seconds a claimed call stays hidden from other processes
POLL = 5.0  # seconds between looks when nothing is due (a notice wakes it sooner: `run`)
REST = 0.1  # seconds at least between two rounds
NO_CREDENTIALS = "IoTDA is not configured here (TRACKER_IOTDA_*): the task was not stopped"


class Stopper:
    def __init__(
        self,
        db: Database,
        platform: PlatformApi | None,
        *,
        give_up: float = GIVE_UP,
        base: float = 1.0,
        budget: Budget | None = None,  # the reconciler's: one budget for all IoTDA is asked
    ) -> None:
        self.db, self.platform, self.give_up, self.base = db, platform, give_up, base
        self.budget = budget
        self.wake = asyncio.Event()  # set by a notice: a call may be owed

    async def run(self) -> None:
        """Make the calls owed until cancelled. Woken by the clock's and the admin API's notice
        after they commit, and by the live feed's after every append (a firing decided in an
        append notifies nothing itself), at most every REST seconds; polls besides."""
        listening = [
            asyncio.create_task(notices.listen(self.db.url, channel, self.wake, POLL))
            for channel in (alert_log.STOPS_CHANNEL, feed.CHANNEL)
        ]
        try:
            await self._loop()
        finally:
            for task in listening:
                task.cancel()
            await asyncio.gather(*listening, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                wait = await self.round()
            except Unavailable as error:
                log.warning("guards: cannot claim the stops owed: %s", error)
                wait = POLL
            except Exception:  # a bug: logged and counted, and the calls owed wait for it
                log.exception("guards: a round of the stops owed failed")
                metrics.GUARD_ERRORS.inc()
                wait = POLL
            await asyncio.sleep(REST)  # appends notify often: a round at most this often
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

    async def _outcome(self, owed: stops.Owed) -> tuple[StopOutcome, str | None] | None:
        """What came of the call owed; None: IoTDA throttled or could not be reached, and
        `give_up` has not passed yet."""
        from tracker.iotda import api  # noqa: PLC0415 - it loads Huawei's SDK

        if self.platform is None:
            return "failed", NO_CREDENTIALS
        try:
            doubt = await self._unconfirmed(owed)
            if doubt is not None:
                return "unconfirmed", doubt
            await self._spend(owed)
            answer = await self.platform.stop_task(owed.operation_id)
        except (api.Throttled, api.Unavailable) as error:
            if isinstance(error, api.Throttled) and self.budget is not None:
                self.budget.hold(error.retry_after or 1.0)  # the platform says: slower, all
            if (datetime.now(UTC) - owed.created_at).total_seconds() < self.give_up:
                return None
            return "failed", f"gave up after {owed.attempts + 1} attempts: {error}"
        except api.PlatformError as error:
            return "refused", str(error)
        # IoTDA answers a whole task's stop with no targets: nothing more to say.
        said = answer.document.get("targets")
        return "stopping", answer.raw.decode("utf-8", "replace") if said else None

    async def _unconfirmed(self, owed: stops.Owed) -> str | None:
        """Why the stop must not be made, or None: the guard still asks it, and IoTDA's own
        counters of the task (ShowBatchTask's task_progress) show its condition. Our counters
        fold what the ingest token delivers; a stop acts on the platform, so it waits for the
        platform's word."""
        assert self.platform is not None  # noqa: S101 - the caller checked
        guard = await guards.one(self.db, owed.guard)
        if guard is None or not guard.stop_task:
            return "the guard no longer asks for a stop"
        await self._spend(owed)
        answer = await self.platform.show_task(owed.operation_id, limit=1)
        progress = (answer.document.get("batchtask") or {}).get("task_progress")
        try:
            counters = TaskProgress.model_validate(progress or {})
        except ValidationError:
            return f"IoTDA's answer has no task_progress to confirm it: {progress!r}"
        reading = confirmed(guard.when, counters)
        if reading is None or not reading.firing:
            return (
                f"IoTDA's own counters do not show it (success {counters.success}, fail "
                f"{counters.fail} of {counters.total}): not stopped"
            )
        return None

    async def _spend(self, owed: stops.Owed) -> None:
        """Wait for the request budget, which the reconciler spends too, but not past half the
        claim's lease (another process may claim the call after it) nor `give_up`: a budget
        held that long (IoTDA's Retry-After, refused credentials) is a throttle, and the call
        is tried again later."""
        from tracker.iotda import api  # noqa: PLC0415 - it loads Huawei's SDK

        if self.budget is None:
            return
        age = (datetime.now(UTC) - owed.created_at).total_seconds()
        try:
            async with asyncio.timeout(max(0.0, min(LEASE / 2, self.give_up - age))):
                await self.budget.take()
        except TimeoutError:
            raise api.Throttled("the IoTDA request budget is held: again later") from None
        metrics.IOTDA_BUDGET_USED.set(self.budget.used())

    async def _call(self, owed: stops.Owed) -> None:
        came = await self._outcome(owed)
        if came is None:  # throttled or unreachable, and not yet too late: again, later
            await stops.again(self.db, owed, backoff(owed.attempts + 1, self.base, 60.0))
            return
        outcome, detail = came
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
