"""Each IoTDA upgrade task's per-device truth, read from the platform's API and appended to the
log as what changed (DESIGN.md, "IoTDA reconciliation").

IoTDA pushes a task's status and nothing per device, and its HTTP push drops a status after one
failed attempt. So the reconciler reads every upgrade task the log knows (from pushes) or that
ListBatchTasks lists (for TRACKER_IOTDA_APP_IDS), through ShowBatchTask, until the task has
ended and has been read in full once more after that; then it leaves the task alone until a
push, or the task list, says it moved again (a retry).

Politeness, in order: one request budget for everything (budget.py: TRACKER_IOTDA_RATE a
second); active tasks before ended ones, the most recently active first; in each visit the
task's failed and retrying devices first (`task_detail_status`), then up to
`PAGES_PER_VISIT` pages of its full sweep, whose place (`marker`) is saved after every page so
a restart resumes it; a 429 or a 5xx holds every request with a backoff.

A page's events are appended before its place is saved: a crash in between reads the page
again, and what it appended is then what the log already says, so nothing is appended twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

from tracker import metrics
from tracker.domain.delivery import NewEvent
from tracker.domain.notifications import TASK_TYPES, SubtaskObserved, Track
from tracker.iotda.api import (
    Answer,
    Denied,
    Missing,
    PlatformApi,
    PlatformError,
    Refused,
    Throttled,
    Unavailable,
)
from tracker.iotda.budget import Budget, backoff
from tracker.iotda.observe import FINAL, Asked, HeldMember, Malformed, Read, read, said_of
from tracker.store import iotda as store
from tracker.store.database import Database
from tracker.store.errors import Unavailable as StoreUnavailable
from tracker.store.group_commit import GroupCommit

log = logging.getLogger(__name__)

PAGE = 50  # details a page: ShowBatchTask's most
PAGES_PER_VISIT = 100  # a large task's sweep, paced: 100 pages, then the next task's turn
ACTIVE_EVERY = timedelta(seconds=30)  # an active task read in full is read again after this
DISCOVER_EVERY = 60.0  # seconds between looks for new tasks (ListBatchTasks, pushes)
WALK_EVERY = timedelta(minutes=10)  # each task list is walked whole again after this
WALK_PAGES = 20  # pages of those walks a discovery round, all lists together: paced
ATTEMPTS = 6  # tries of one request through 429s and 5xx before the visit gives up for now
DENIED_PAUSE = 300.0  # seconds: five bad signatures in a row lock the AK for five minutes
BUSY_PAUSE = 30.0  # seconds between tries for the lock another process holds
BUG_PAUSE = 300.0  # seconds at most between tries after a round failed for no known reason
DUE_BATCH = 100
RETRY_LATER = timedelta(seconds=60)  # a task whose visit failed (a 5xx storm, an odd answer)
REFUSED_LATER = timedelta(days=1)  # a task whose id IoTDA refuses (400): asked again after this
NEVER = None  # a sweep's next_at: never due again
CHECKS = ("Fail", "FailWaitRetry")  # read first in every visit of an active task


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Tally:
    """What a pass did: for `tracker reconcile`'s report and the tests."""

    requests: int = 0
    tasks: int = 0
    appended: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # task_details entries the models refused
    events: list[NewEvent] = field(default_factory=list)  # dry run: what would be appended


class Reconciler:
    clock: Callable[[], datetime] = staticmethod(now)  # a test may set its own

    def __init__(
        self,
        db: Database,
        api: PlatformApi,
        budget: Budget,
        appends: GroupCommit | None,  # None: a dry run, which appends and saves nothing
        app_ids: tuple[str | None, ...] = (None,),  # whose tasks to list; None: every app's
    ) -> None:
        self.db, self.api, self.budget, self.appends = db, api, budget, appends
        self.app_ids = app_ids
        self.tally = Tally()
        self._dry: dict[str, store.Sweep] = {}  # a dry run's tasks found
        # A dry run's subtask events, by task and device: the log says them in a real run, so
        # a later page of the same pass (the failed-first reads, say) must not count them again.
        self._would: dict[str, dict[str, HeldMember]] = {}
        self._failures = 0  # rounds failed in a row (`run`'s backoff)
        self._walk_left: int | None = None  # pages of walks left this round (None: no limit)

    # The loop `tracker serve` runs.

    async def run(self) -> None:
        """Reconcile until cancelled: hold the lock, discover, visit what is due. A failure
        outside a visit or a list's read (the database, a bug) backs off, longer each time in
        a row, until a round reads what is due again."""
        while True:
            try:
                async with store.exclusive(self.db):
                    log.info("reconciling with IoTDA at %s req/s", self.budget.rate)
                    await self._serve()
            except store.Busy:
                log.info(
                    "another process reconciles with IoTDA; trying again in %.0f s", BUSY_PAUSE
                )
                await asyncio.sleep(BUSY_PAUSE)
            except StoreUnavailable as error:
                pause = backoff(self._failures, cap=30.0)
                self._failures += 1
                log.warning(
                    "reconciler: the database is unavailable (%s); again in %.1f s", error, pause
                )
                await asyncio.sleep(pause)
            except Exception:  # a bug: logged, counted, and tried again
                pause = backoff(self._failures, cap=BUG_PAUSE)
                self._failures += 1
                log.exception("reconciler: a round failed; again in %.1f s", pause)
                metrics.IOTDA_ERRORS.inc()
                await asyncio.sleep(pause)

    async def _serve(self) -> None:
        """Rounds: every task due when a round starts gets one visit, in priority order (a
        large task's sweep goes on in the next round, after the others had theirs). Discovery
        every DISCOVER_EVERY seconds, between two visits. A visit or a list's read that fails
        (the platform, a bug) is logged and waits its turn; the others go on."""
        discovered = -DISCOVER_EVERY
        while True:
            if time.monotonic() - discovered >= DISCOVER_EVERY:
                discovered = time.monotonic()
                await self._discover_each(WALK_PAGES)
            due = await store.due(self.db, self.clock(), DUE_BATCH)
            self._failures = 0
            metrics.IOTDA_BEHIND.set(await store.behind(self.db, self.clock()))
            metrics.IOTDA_BUDGET_USED.set(self.budget.used())  # falls while nothing is asked
            if not due:
                await asyncio.sleep(1.0)
                continue
            for sweep in due:
                if not await self._guarded(self.visit(sweep, PAGES_PER_VISIT)):
                    sweep.next_at = self.clock() + RETRY_LATER  # not at once: others first
                    await self._save(sweep)
                if time.monotonic() - discovered >= DISCOVER_EVERY:
                    break  # new tasks may come before the rest of this round

    async def _discover_each(self, walk_pages: int) -> None:
        """`discover`, each part on its own: one list the platform refuses (an app id gone)
        or cannot serve now keeps no other from being read."""
        await self._guarded(self._pushed())
        self._walk_left = walk_pages  # all lists together
        for app_id in self.app_ids:
            for task_type in TASK_TYPES:
                await self._guarded(self._list(app_id, task_type))

    async def _guarded(self, work: Awaitable[None]) -> bool:
        """Run one visit or one part of discovery; the platform's failures and bugs are logged
        and pause it, they never end the loop (the database's unavailability goes up, to
        `run`). Whether it went through."""
        try:
            await work
        except Denied as error:
            log.error(  # noqa: TRY400 - the platform's own words say it all
                "IoTDA refused the credentials (%s); pausing %.0f s", error, DENIED_PAUSE
            )
            self.budget.hold(DENIED_PAUSE)
        except (PlatformError, Malformed) as error:
            log.warning("reconciler: %s", error)
        except StoreUnavailable:
            raise
        except Exception:  # a bug, or an append refused: this one waits, the others go on
            log.exception("reconciler: a visit or a list's read failed")
            metrics.IOTDA_ERRORS.inc()
        else:
            return True
        return False

    # One pass: `tracker reconcile`.

    async def once(self, task_id: str | None = None) -> Tally:
        """Read every due task in full, or only `task_id` (from the start, due or not), once."""
        if task_id is not None:
            sweep = await store.sweep(self.db, task_id) or _fresh(task_id, None, "", self.clock())
            sweep.marker, sweep.swept = None, 0  # a sweep of its own, whatever one was under way
            await self.visit(sweep, None)
            return self.tally
        await self.discover()
        due = await store.due(self.db, self.clock(), 1_000_000)
        seen = {s.task_id for s in due}
        due += [s for s in self._dry.values() if s.task_id not in seen]
        for sweep in due:
            await self.visit(sweep, None)
        return self.tally

    # Finding tasks.

    async def discover(self, *, walk_pages: int | None = None) -> None:
        """Tasks to read (DESIGN.md, "IoTDA reconciliation"):

        - those a push told of: new, or moved since the last read;
        - the head of each task list (ListBatchTasks, newest first) for TRACKER_IOTDA_APP_IDS:
          new tasks, and known ones whose status moved since the last read, up to the first
          page with neither;
        - and the whole list, again WALK_EVERY after the last walk of it ended, up to
          `walk_pages` pages of each list (None: to the end; `serve` gives all lists together
          WALK_PAGES a round): what a head read cut short missed, and a task long ended that
          was retried and whose push was lost. Its place is saved after each page: a restart
          resumes it, and a place the platform refuses starts it again from the top.
        """
        await self._pushed()
        for app_id in self.app_ids:
            for task_type in TASK_TYPES:
                self._walk_left = walk_pages  # each list
                await self._list(app_id, task_type)

    async def _pushed(self) -> None:
        news = await store.pushed_news(self.db)
        await self._found([t for t in news if t[2] in TASK_TYPES], revive=True)

    async def _list(self, app_id: str | None, task_type: str) -> None:
        """One task list's head, then its walk, within the pages `_walk_left`."""
        if await self._head(app_id, task_type):  # it read the whole list: a walk done
            await self._save_walk(app_id, task_type, store.Listing(None, self.clock()))
            return
        await self._walk(app_id, task_type)

    async def _head(self, app_id: str | None, task_type: str) -> bool:
        """Whether it read the list to its end (all of it was news: the first read, say)."""
        marker = None
        while True:
            news, marker = await self._listed(app_id, task_type, marker)
            if marker is None:
                return True
            if not news:
                return False

    async def _walk(self, app_id: str | None, task_type: str) -> None:
        if self.appends is None:  # a dry run: the whole list, and nothing saved
            walk = store.Listing(None, None)
        else:
            walk = await store.listing(self.db, app_id, task_type)
        rested = walk.walked_at is not None and self.clock() - walk.walked_at < WALK_EVERY
        if self._walk_left is not None and walk.marker is None and rested:
            return
        while self._walk_left is None or self._walk_left > 0:
            try:
                _, walk.marker = await self._listed(app_id, task_type, walk.marker)
            except (Missing, Refused):
                if walk.marker is not None:  # a place the platform refuses: from the top, next
                    await self._save_walk(app_id, task_type, store.Listing(None, walk.walked_at))
                raise
            if self._walk_left is not None:
                self._walk_left -= 1
            if walk.marker is None:
                walk.walked_at = self.clock()
            await self._save_walk(app_id, task_type, walk)
            if walk.marker is None:
                return

    async def _save_walk(self, app_id: str | None, task_type: str, walk: store.Listing) -> None:
        if self.appends is not None:
            await store.save_listing(self.db, app_id, task_type, walk, self.clock())

    async def _listed(
        self, app_id: str | None, task_type: str, marker: str | None
    ) -> tuple[bool, str | None]:
        """One page of a task list: its new tasks found, its known ones whose status moved
        since their last read revived. Whether it had any such, and the next page's marker
        (None: this was the last)."""
        answer = await self._ask(
            "ListBatchTasks",
            partial(self.api.list_tasks, task_type=task_type, app_id=app_id, marker=marker),
        )
        listed = [
            (str(t["task_id"]), app_id, task_type, str(t.get("status") or ""))
            for t in answer.document.get("batchtasks") or []
            if isinstance(t, dict) and t.get("task_id")
        ]
        held = await store.statuses(self.db, [t[0] for t in listed])
        held |= {t: s.status for t, s in self._dry.items()}  # a dry run's finds
        new = [t for t in listed if t[0] not in held]
        moved = [t for t in listed if t[0] in held and t[3] and t[3] != held[t[0]]]
        await self._found(new, revive=False)
        await self._found(moved, revive=True)
        page = answer.document.get("page") or {}
        after = page.get("marker") if isinstance(page, dict) else None
        last = not after or len(answer.document.get("batchtasks") or []) < PAGE
        return bool(new or moved), None if last else str(after)

    async def _found(self, tasks: list[tuple[str, str | None, str, str]], *, revive: bool) -> None:
        if self.appends is None:  # a dry run writes nothing: it keeps what it found in memory
            for task_id, app_id, task_type, status in tasks:
                found = self._dry.setdefault(
                    task_id, _fresh(task_id, app_id, task_type, self.clock())
                )
                found.status = status or found.status
        elif tasks:
            await store.found(self.db, tasks, self.clock(), revive=revive)

    # Reading a task.

    async def visit(self, sweep: store.Sweep, max_pages: int | None) -> None:
        """Read one task: its head (status, progress, newest details), its failed and retrying
        devices if it is active, then its full sweep from where it was, for up to `max_pages`
        pages (None: to the end)."""
        self.tally.tasks += 1
        try:
            first = await self._page(sweep, None, None, with_task=True)
        except (Missing, Refused) as error:  # gone, or an id IoTDA refuses: not again soon
            gone = isinstance(error, Missing)
            log.warning(
                "IoTDA will not show task %s (%s): read again %s, or when a push moves it",
                sweep.task_id,
                error,
                "never" if gone else "in a day",
            )
            held = await store.held_task(self.db, sweep.task_id)
            sweep.status = sweep.status if held is None else held.status  # what a push said
            # A refusal may be ours to fix (the settings, a request): not for ever.
            sweep.next_at = NEVER if gone else self.clock() + REFUSED_LATER
            await self._save(sweep)
            return
        final = first.status in FINAL
        sweep.status = first.status
        if sweep.marker is None:  # the head is the first page of a new sweep
            sweep.started_final, sweep.swept = final, len(first.targets)
            sweep.marker = None if _last(first, sweep.swept) else first.marker
            if sweep.marker is None:
                self._complete(sweep)
        changed = bool(first.events)
        if not final:
            changed |= await self._check(sweep, first)
        changed |= await self._sweep(sweep, max_pages)
        if changed:
            sweep.last_activity = self.clock()
        if final and sweep.final_reads >= 1:
            sweep.next_at = NEVER  # ended, and read in full since: left alone
        elif sweep.marker is not None or final:
            sweep.next_at = self.clock()  # a sweep to go on with, or the final read to do
        else:
            sweep.next_at = self.clock() + ACTIVE_EVERY
        await self._save(sweep)

    async def _check(self, sweep: store.Sweep, head: Read) -> bool:
        """The task's failed and retrying devices, newest first (a page of each that the
        platform's counters do not say is empty). Whether anything changed."""
        changed = False
        for status in CHECKS:
            count = None if head.progress is None else getattr(head.progress, _counter(status))
            if count != 0:
                checked = await self._page(sweep, None, status, with_task=False)
                changed |= bool(checked.events)
        return changed

    async def _sweep(self, sweep: store.Sweep, max_pages: int | None) -> bool:
        """Go on with the full sweep; its place is saved after each page. Whether anything
        changed."""
        changed, pages = False, 0
        while sweep.marker is not None and (max_pages is None or pages < max_pages):
            page = await self._page(sweep, sweep.marker, None, with_task=False)
            changed |= bool(page.events)
            pages += 1
            sweep.swept += len(page.targets)
            sweep.marker = None if _last(page, sweep.swept) else page.marker
            if sweep.marker is None:
                self._complete(sweep)
            else:
                await self._save(sweep)  # the place, once the page's events are in the log
        return changed

    def _complete(self, sweep: store.Sweep) -> None:
        sweep.sweeps += 1
        sweep.final_reads += int(sweep.started_final)
        sweep.swept = 0

    async def _page(
        self, sweep: store.Sweep, marker: str | None, status: str | None, *, with_task: bool
    ) -> Read:
        answer = await self._ask(
            "ShowBatchTask",
            lambda: self.api.show_task(
                sweep.task_id, detail_status=status, marker=marker, limit=PAGE
            ),
        )
        asked = Asked(answer.raw, self.clock(), answer.request, sweep.app_id)
        track: Track = "firmware" if _task_type(answer) == "firmwareUpgrade" else "software"
        targets = _targets(answer)
        held_task = await store.held_task(self.db, sweep.task_id) if with_task else None
        held = await store.held_members(self.db, sweep.task_id, track, targets)
        would = self._would.get(sweep.task_id)
        if would:  # a dry run's earlier pages: what the log would say by now
            held |= {t: would[t] for t in targets if t in would}
        found = read(asked, held_task, held, with_task=with_task)
        if self.appends is None:
            self._would_say(sweep.task_id, found.events)
        if found.skipped:
            log.warning(
                "task %s: %d subtask entries are not IoTDA's TaskDetail; not appended",
                sweep.task_id,
                found.skipped,
            )
        self.tally.skipped += found.skipped
        await self._append(found.events)
        return found

    def _would_say(self, task_id: str, events: list[NewEvent]) -> None:
        for event in events:
            n = event.notification
            if isinstance(n, SubtaskObserved):
                self._would.setdefault(task_id, {})[n.detail.target] = said_of(n)

    async def _append(self, events: list[NewEvent]) -> None:
        for event in events:
            self.tally.appended[event.event_type] += 1
        if self.appends is None:
            self.tally.events.extend(events)
            return
        await asyncio.gather(*(self.appends.append(e) for e in events))
        for event in events:
            metrics.IOTDA_OBSERVATIONS.labels(event.event_type).inc()

    async def _save(self, sweep: store.Sweep) -> None:
        if self.appends is not None:
            await store.save(self.db, sweep, self.clock())

    async def _ask(self, call: str, request: Callable[[], Awaitable[Answer]]) -> Answer:
        """One request within the budget, through 429s and 5xx with backoff."""
        for attempt in range(ATTEMPTS):
            waited = self.budget.waited
            await self.budget.take()
            metrics.IOTDA_WAITED.inc(self.budget.waited - waited)
            metrics.IOTDA_BUDGET_USED.set(self.budget.used())
            self.tally.requests += 1
            try:
                answer = await request()
            except Throttled as error:
                metrics.IOTDA_REQUESTS.labels(call, "throttled").inc()
                self.budget.hold(error.retry_after or backoff(attempt))
            except Unavailable as error:
                metrics.IOTDA_REQUESTS.labels(call, "unavailable").inc()
                if attempt == ATTEMPTS - 1:
                    raise
                pause = backoff(attempt)
                log.info("IoTDA: %s; again in %.1f s", error, pause)
                self.budget.hold(pause)
            except PlatformError:
                metrics.IOTDA_REQUESTS.labels(call, "refused").inc()
                raise
            else:
                metrics.IOTDA_REQUESTS.labels(call, "ok").inc()
                return answer
        raise Unavailable(f"{call}: still throttled after {ATTEMPTS} tries")


def _fresh(task_id: str, app_id: str | None, task_type: str, at: datetime) -> store.Sweep:
    return store.Sweep(
        task_id,
        app_id,
        task_type,
        "",
        None,
        0,
        started_final=False,
        sweeps=0,
        final_reads=0,
        last_activity=at,
        next_at=at,
    )


def _last(page: Read, swept: int) -> bool:
    """Whether the sweep has read the task's last page: a short page, no marker, or as many
    details as the platform counts (which spares reading an empty page after a full one)."""
    return (
        page.marker is None
        or len(page.targets) + page.skipped < PAGE
        or (page.matched is not None and swept >= page.matched)
    )


def _counter(status: str) -> str:
    return "fail" if status == "Fail" else "fail_wait_retry"


def _task_type(answer: Answer) -> str:
    task = answer.document.get("batchtask")
    return str(task.get("task_type")) if isinstance(task, dict) else ""


def _targets(answer: Answer) -> list[str]:
    details = answer.document.get("task_details")
    if not isinstance(details, list):
        return []
    return [str(d["target"]) for d in details if isinstance(d, dict) and d.get("target")]
