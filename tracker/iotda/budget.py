"""How fast tracker may ask IoTDA: a token bucket shared by every request, and the backoff after
a refusal.

IoTDA limits each tenant's calls of an API per second (flow control answers 429 over it), and
that limit is shared with whatever else the tenant runs, so tracker spends a budget of its own
(TRACKER_IOTDA_RATE, `DEFAULT_RATE` by default) rather than finding the limit by hitting it. A
429 or a 5xx then `hold`s every request, not just the one refused: the platform is telling the
whole client to slow down.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable

DEFAULT_RATE = 5.0  # requests per second: TRACKER_IOTDA_RATE's default
USED_OVER = 60.0  # seconds: `used` is the share of the budget spent in this window
# Float error (a + (b - a) need not be b) must not leave a waiter a sliver short after its
# sleep, to sleep again for less than the clock can tell: what is this close counts as there.
_ROUNDING = 1e-9  # in tokens, and in seconds


class Budget:
    """A token bucket: `rate` requests per second, and up to `burst` at once after a quiet spell.

    `burst` defaults to one: IoTDA counts per second in windows whose start we do not know, and
    only a bucket of one keeps every second-long window within `rate` (a bucket of five at five
    per second lets nine through in the second after an idle one). Waiters go in the order
    they came (one lock), and each sleeps exactly as long as the bucket says, never polling.
    """

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"the request rate must be a positive number, not {rate!r}")
        if burst is not None and burst < 1:
            raise ValueError(f"the burst must be at least one request, not {burst!r}")
        self._rate, self._burst = float(rate), float(burst or 1)
        self._clock, self._sleep = clock, sleep
        self._tokens, self._since = self._burst, clock()  # tokens held as of `_since`
        self._held_until = -math.inf
        self._queue = asyncio.Lock()
        self._spent, self._waited = 0, 0.0
        self._taken: deque[float] = deque()  # when each request of the last USED_OVER s went

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def spent(self) -> int:
        """Requests taken so far."""
        return self._spent

    @property
    def waited(self) -> float:
        """Seconds requests spent in `take` before they could go, summed over requests."""
        return self._waited

    def used(self) -> float:
        """The share of the budget spent over the last USED_OVER seconds (0 to 1, give or take
        the one request a bucket of one lets through at a window's edge): /metrics'
        "budget used"."""
        self._forget(self._clock())
        return len(self._taken) / (self._rate * USED_OVER)

    def _forget(self, now: float) -> None:
        while self._taken and now - self._taken[0] >= USED_OVER:
            self._taken.popleft()

    async def take(self) -> None:
        """Wait until one more request may go, and count it as spent."""
        came = self._clock()
        async with self._queue:
            while (wait := self._wait(self._clock())) > 0:
                await self._sleep(wait)
            self._tokens -= 1
            self._spent += 1
            went = self._clock()
            self._waited += went - came
            self._taken.append(went)
            self._forget(went)

    def hold(self, seconds: float) -> None:
        """Let no request go for `seconds` from now (a hold already longer stands), then go on
        at the steady rate: at its end the bucket holds what the rate earned meanwhile but at
        most one token, never a burst, since the platform has just said we were too fast."""
        if not math.isfinite(seconds):
            raise ValueError(f"a hold of {seconds} seconds")
        now = self._clock()
        self._refill(now)
        end = now + max(0.0, seconds)
        if end > self._held_until:  # nothing accrues while held: credit the hold's time now
            credited = end - max(now, self._held_until)
            self._tokens = min(1.0, self._tokens + credited * self._rate)
            self._held_until = end

    def _wait(self, now: float) -> float:
        """Seconds until a token is there and no hold stands (0: one may go now)."""
        self._refill(now)
        if self._held_until - now > _ROUNDING:
            return self._held_until - now
        missing = 1 - self._tokens
        return missing / self._rate if missing > _ROUNDING else 0.0

    def _refill(self, now: float) -> None:
        start = max(self._since, self._held_until)  # nothing accrues during a hold
        if now > start:
            self._tokens = min(self._burst, self._tokens + (now - start) * self._rate)
        self._since = max(self._since, now)


def backoff(
    attempt: int,
    base: float = 1.0,
    cap: float = 60.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first): a ceiling that doubles
    from `base` up to `cap`, and "equal jitter" under it (half fixed, half random). The fixed
    half keeps a struggling platform from being hammered; the random half keeps several
    trackers that failed together from coming back together."""
    if attempt < 0:
        raise ValueError(f"attempt counts from 0, not {attempt}")
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))  # 2**64 * base is past any cap
    return ceiling / 2 + ceiling / 2 * rng()
