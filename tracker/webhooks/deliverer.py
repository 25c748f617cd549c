"""The deliverer: sends the outbox's rows after their transactions commit, at least once.

`Deliverer(db, settings).run()` runs until cancelled, in any number of processes at once
(claims skip each other's rows: store/outbox.py). It wakes on NOTIFY `tracker_webhooks` (sent by
`outbox.announce`, which callers call after the commit that enqueued, and by `retry`), on the
live feed's NOTIFY `tracker_log` (sent after every append that projected something, so a change
enqueued by an append goes out even if no one announced it; looked at no more often than every
`LOG_WAKE_EVERY`), and polls every `poll` seconds besides, so a lost LISTEN connection or a row
whose backoff ended is only late, never forgotten. It runs beside ingestion, never inside an
append's transaction: a slow receiver costs ingestion nothing.

A round reads the due heads and the soonest one (two walks of the due index's first entries,
whatever waits behind heads that hang); counting every pending row for the gauge, and
unsticking a key left with nothing due (outbox.py), happen only every `COUNT_EVERY` and
`UNSTICK_EVERY` seconds.

Each attempt POSTs the stored body under its signature (signing.py) within
`TRACKER_WEBHOOK_TIMEOUT`, to an address checked just before connecting (targets.py), without
following redirects. Any 2xx is delivered. Anything else is a failure: the row is due again
after an exponential backoff with equal jitter (`backoff`: `base` doubling per attempt, capped
at `cap`, half of it random, so receivers coming back are not hit by every sender at once),
until `TRACKER_WEBHOOK_GIVE_UP` seconds have passed since the change; then it is dead.

Up to `concurrency` attempts are in flight at once, each the head of a different ordering key
(a key's next row waits for its head), and at most `per_origin` of them (half the slots, at
least one) to one origin, scheme://host[:port] (outbox.ORIGIN), however many keys and guards
send there. So a receiver that hangs, even with more keys due than there are slots (a guard
over many rollouts, each firing), holds at most its share of the slots, each for at most the
timeout, and the other receivers are delivered in the rest. A round gives the claim the origins
at their cap to skip: their due heads are stepped over, neither leased nor moved, so they stay
due in their place and go at the first round after one of their attempts lands (which wakes
it). A claim asks for no more rows than the least room any origin in flight has left, so none
passes its cap whatever comes back, and the round claims again while claims come back full and
slots are free. The look for the soonest head skips those origins too: their heads are
overdue, and would bring a round back every `MIN_WAIT` for nothing. The cap is per process,
like the slots; with `concurrency` 1 the one slot is every origin's share.

A webhook's URL is often a capability (a token in its path or query): a log line names it by
its origin, scheme://host[:port], and the row's id, and an error's text is cut likewise
(`origin`, `scrub`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time

import aiohttp
import yarl

from tracker import metrics
from tracker.config import Settings
from tracker.store import feed, notices, outbox
from tracker.store.database import Database
from tracker.store.errors import Unavailable
from tracker.webhooks import signing, targets

log = logging.getLogger(__name__)

CAP = 600.0  # seconds: the longest wait between two attempts
LEASE_MARGIN = 30.0  # seconds beyond the timeout that a claimed row stays hidden
MIN_WAIT = 0.05  # seconds: the shortest wait between two rounds
LOG_WAKE_EVERY = 0.1  # seconds: the live feed's NOTIFYs wake a round at most this often
COUNT_EVERY = 5.0  # seconds between two counts of the pending rows (the gauge)
UNSTICK_EVERY = 60.0  # seconds between two looks for keys with nothing due (outbox.unstick)


def backoff(attempts: int, base: float, cap: float = CAP, rand: float | None = None) -> float:
    """Seconds to wait after the `attempts`-th failure (1, 2, ...): equal jitter, half of
    min(cap, base * 2^(attempts - 1)) fixed and half random (`rand` in [0, 1): a test's)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    return ceiling / 2 + ceiling / 2 * (random.random() if rand is None else rand)  # noqa: S311 - jitter, not a secret


def origin(url: str) -> str:
    """What a log line may say of a webhook's URL: scheme://host[:port], no credentials, path,
    query or fragment."""
    try:
        return str(yarl.URL(url).origin())
    except (ValueError, TypeError):
        return "(not an absolute URL)"


def scrub(text: str, url: str) -> str:
    """`text` (an error's) with `url`, as given or as aiohttp writes it in its errors, cut to its
    origin, and its path and query, wherever they appear alone, cut to "/..."."""
    whole, parts = {url}, set()
    with contextlib.suppress(ValueError, TypeError):
        parsed = yarl.URL(url)
        whole |= {str(parsed), str(parsed.with_fragment(None)), parsed.human_repr()}
        parts |= {parsed.raw_path_qs, parsed.path_qs}
    for form in sorted(whole, key=len, reverse=True):
        text = text.replace(form, origin(url))
    for form in sorted(parts - {"", "/"}, key=len, reverse=True):
        text = text.replace(form, "/...")
    return text


class Deliverer:
    def __init__(  # noqa: PLR0913 - each knob is a test's or an operator's
        self,
        db: Database,
        settings: Settings,
        *,
        base: float = 1.0,
        poll: float = 5.0,
        concurrency: int = 4,
        lookup: targets.Lookup | None = None,
    ) -> None:
        self.db = db
        self.allowed = targets.allowed_hosts(settings.webhook_hosts)
        self.timeout = settings.webhook_timeout
        self.give_up = settings.webhook_give_up
        self.base = base
        self.poll = poll
        self.lookup = lookup
        self.concurrency = concurrency
        # Derived, not a knob: it follows the slots, and leaves at least half of them to the
        # other origins (but with a single slot).
        self.per_origin = max(1, concurrency // 2)
        self._wake = asyncio.Event()
        self._flights: dict[asyncio.Task[None], str] = {}  # each attempt in flight: its origin
        self._aloft: collections.Counter[str] = collections.Counter()  # attempts per origin
        self._count_at = self._unstick_at = 0.0  # time.monotonic() of the next one

    async def run(self) -> None:
        """Deliver until cancelled; attempts in flight are cancelled with it (their rows come
        back when their lease ends)."""
        resolver = targets.GuardedResolver(self.allowed, self.lookup)
        connector = aiohttp.TCPConnector(resolver=resolver, limit=self.concurrency)
        listening = asyncio.create_task(self._listen(), name="webhook-listener")
        try:
            async with aiohttp.ClientSession(connector=connector) as session:
                while True:
                    wait = await self._round(session)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wake.wait()
                    self._wake.clear()
        finally:
            listening.cancel()
            for flight in list(self._flights):
                flight.cancel()
            await asyncio.gather(listening, *self._flights, return_exceptions=True)

    async def _round(self, session: aiohttp.ClientSession) -> float:
        """Claim as many due rows as there are free slots, none to an origin at its cap, and
        send each in a task of its own; how long to wait, at most, before the next round (unless
        woken)."""
        try:
            while free := self.concurrency - len(self._flights):
                # No more than the least room left to an origin in flight: whatever the claim
                # returns, no origin passes its cap.
                rooms = [self.per_origin - n for n in self._aloft.values() if n < self.per_origin]
                limit = min(free, self.per_origin, *rooms)
                rows = await outbox.claim(
                    self.db, limit, self.timeout + LEASE_MARGIN, self._capped()
                )
                for row in rows:
                    self._take_off(session, row)
                if len(rows) < limit:
                    break  # nothing else is due now (or another process holds it)
        except Unavailable as error:
            log.warning("webhooks: cannot claim deliveries: %s", error)
            return self.poll
        try:
            soonest = await outbox.soonest(self.db, self._capped())
            await self._tend()
        except Unavailable as error:
            log.warning("webhooks: cannot look at pending deliveries: %s", error)
            return self.poll
        if soonest is None or len(self._flights) >= self.concurrency:
            return self.poll  # nothing due, or no slot: a landing attempt wakes the loop
        # A backoff ending before the next poll; never a busy loop on a row another process
        # is claiming right now.
        return min(self.poll, max(soonest, MIN_WAIT))

    async def _tend(self) -> None:
        """Now and then, not every round: count the pending rows for the gauge (a walk of every
        one), and make due the first row of any key left with nothing due (outbox.unstick)."""
        now = time.monotonic()
        if now >= self._count_at:
            metrics.WEBHOOK_PENDING.set(await outbox.pending(self.db))
            self._count_at = now + COUNT_EVERY
        if now >= self._unstick_at:
            unstuck = await outbox.unstick(self.db)
            self._unstick_at = now + UNSTICK_EVERY
            if unstuck:
                log.warning(
                    "webhooks: %d key(s) had nothing due: now due %s", len(unstuck), unstuck[:20]
                )
                self._wake.set()

    def _capped(self) -> list[str]:
        """The origins with as many attempts in flight as one may have."""
        return [found for found, n in self._aloft.items() if n >= self.per_origin]

    def _take_off(self, session: aiohttp.ClientSession, row: outbox.Claimed) -> None:
        flight = asyncio.create_task(self._attempt(session, row), name=f"webhook {row.id}")
        self._flights[flight] = row.origin
        self._aloft[row.origin] += 1
        flight.add_done_callback(self._landed)

    def _landed(self, flight: asyncio.Task[None]) -> None:
        landed = self._flights.pop(flight, None)
        if landed is not None:
            self._aloft[landed] -= 1
            if self._aloft[landed] <= 0:
                del self._aloft[landed]
        self._wake.set()  # a slot is free, for its origin too, and the key's next row may be due

    async def _attempt(self, session: aiohttp.ClientSession, row: outbox.Claimed) -> None:
        error = await self._send(session, row)
        if error is not None:
            error = scrub(error, row.url)  # kept in the row too: its URL is beside it
        try:
            if error is None:
                await outbox.delivered(self.db, row)
                metrics.WEBHOOK_DELIVERIES.labels(outcome="delivered").inc()
                return
            delay = backoff(row.attempts + 1, self.base)
            state = await outbox.failed(self.db, row, error, delay, self.give_up)
        except Unavailable as failure:  # the lease ends and the row is claimed again
            log.warning("webhooks: cannot record %s: %s", row.id, failure)
            return
        outcome = "dead" if state == "dead" else "failed"
        metrics.WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        log.log(
            logging.WARNING if outcome == "dead" else logging.INFO,
            "webhook %s to %s %s: %s",
            row.id,
            origin(row.url),
            "is dead" if outcome == "dead" else "failed",
            error,
        )

    async def _send(self, session: aiohttp.ClientSession, row: outbox.Claimed) -> str | None:
        """One POST; None when answered 2xx, else what went wrong."""
        if row.secret is None:
            return f"no webhook secret named {row.secret_ref!r}"
        try:
            # Again at delivery: an address literal never reaches the resolver, and the
            # settings may have changed since the guard was written.
            targets.check_literal(targets.host_of(row.url), self.allowed)
            async with session.post(
                row.url,
                data=row.body,
                headers=signing.headers(row.secret, row.body, time.time()),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                if 200 <= response.status < 300:
                    return None
                return f"answered {response.status}"
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except targets.Refused as refused:
            return f"refused: {refused}"
        except (aiohttp.ClientError, OSError, ValueError) as failure:
            return f"{type(failure).__name__}: {failure}"

    async def _listen(self) -> None:
        """Wake the loop on every NOTIFY of the outbox, and on the live feed's at most every
        `LOG_WAKE_EVERY` (polling covers an outage)."""
        logged = asyncio.Event()
        await asyncio.gather(
            notices.listen(self.db.url, outbox.CHANNEL, self._wake, self.poll),
            notices.listen(self.db.url, feed.CHANNEL, logged, self.poll),
            self._debounce(logged),
        )

    async def _debounce(self, logged: asyncio.Event) -> None:
        """A round at once on the first append after a quiet spell; then one for all the appends
        of each `LOG_WAKE_EVERY`."""
        while True:
            await logged.wait()
            logged.clear()
            self._wake.set()
            await asyncio.sleep(LOG_WAKE_EVERY)
