"""The request budget (tracker/iotda/budget.py) on a clock of the test's own: a burst, then the
steady rate; a hold stops everyone and resumes without a burst; backoff doubles under its cap."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from tracker.iotda.budget import DEFAULT_RATE, Budget, backoff


class Clock:
    """Time that passes only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)  # the others run meanwhile, as they would during a real sleep
        self.now += seconds


def budget(clock: Clock, rate: float = 5.0, burst: int | None = None) -> Budget:
    return Budget(rate, burst, clock, sleep=clock.sleep)


async def granted(clock: Clock, bucket: Budget, count: int) -> list[float]:
    """When each of `count` requests, taken one after another, may go (from the start)."""
    start, times = clock.now, []
    for _ in range(count):
        await bucket.take()
        times.append(round(clock.now - start, 9))
    return times


async def test_a_burst_goes_at_once_then_the_steady_rate() -> None:
    clock = Clock()
    bucket = budget(clock, rate=5, burst=3)

    assert await granted(clock, bucket, 8) == [0, 0, 0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert bucket.spent == 8
    assert bucket.waited == pytest.approx(5 * 0.2)  # each from its own arrival
    assert clock.sleeps == pytest.approx([0.2] * 5)  # slept as long as the bucket said, once


async def test_a_second_of_steady_requests_holds_the_rate() -> None:
    clock = Clock()
    bucket = budget(clock, rate=DEFAULT_RATE)

    times = await granted(clock, bucket, 101)

    assert times[-1] == pytest.approx(20.0)  # 100 after the first, at 5 per second
    per_second = [sum(1 for at in times if second <= at < second + 1) for second in range(20)]
    assert set(per_second) == {DEFAULT_RATE}


async def test_the_default_burst_is_one_so_no_second_holds_more_than_the_rate() -> None:
    clock = Clock()
    bucket = budget(clock, rate=5)
    clock.now += 3600  # idle for an hour: still one at once

    times = await granted(clock, bucket, 6)

    assert times == [0, 0.2, 0.4, 0.6, 0.8, 1.0]


async def test_an_idle_spell_refills_no_more_than_the_burst() -> None:
    clock = Clock()
    bucket = budget(clock, rate=2, burst=4)
    await granted(clock, bucket, 4)
    clock.now += 60

    assert await granted(clock, bucket, 6) == [0, 0, 0, 0, 0.5, 1.0]


async def test_a_hold_delays_the_next_request_and_ends_without_a_burst() -> None:
    clock = Clock()
    bucket = budget(clock, rate=5, burst=5)
    await bucket.take()

    bucket.hold(3.0)

    assert await granted(clock, bucket, 3) == [3.0, 3.2, 3.4]
    assert bucket.waited == pytest.approx(3.0 + 0.2 + 0.2)


async def test_a_shorter_hold_does_not_cut_a_longer_one_short() -> None:
    clock = Clock()
    bucket = budget(clock, rate=5)
    bucket.hold(10.0)
    clock.now += 1
    bucket.hold(2.0)
    bucket.hold(-5.0)  # nothing
    for endless in (math.inf, math.nan):
        with pytest.raises(ValueError, match="hold"):
            bucket.hold(endless)

    assert await granted(clock, bucket, 1) == [9.0]


async def test_a_hold_during_a_wait_holds_the_waiter_too() -> None:
    clock = Clock()
    bucket = budget(clock, rate=1)
    await bucket.take()
    waiter = asyncio.create_task(bucket.take())  # would go at +1 s
    await asyncio.sleep(0)  # it is asleep now

    bucket.hold(5.0)  # arrives while it sleeps
    await waiter

    assert clock.sleeps == pytest.approx([1.0, 4.0])  # woke, saw the hold, slept out its rest
    assert clock.now == 1005.0


async def test_concurrent_takers_go_in_turn_at_the_rate() -> None:
    clock = Clock()
    bucket = budget(clock, rate=4)
    order: list[tuple[int, float]] = []

    async def request(number: int) -> None:
        await bucket.take()
        order.append((number, clock.now - 1000.0))

    await asyncio.gather(*(request(number) for number in range(5)))

    assert order == [(0, 0), (1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0)]
    assert bucket.spent == 5
    assert bucket.waited == pytest.approx(0.25 + 0.5 + 0.75 + 1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (math.nan, None), (5, 0)])
def test_a_budget_that_cannot_be_kept_is_refused(rate: float, burst: int | None) -> None:
    with pytest.raises(ValueError, match=r"rate|burst"):
        Budget(rate, burst)


def test_rate_is_what_was_given() -> None:
    assert Budget(2.5).rate == 2.5


def test_backoff_doubles_with_equal_jitter() -> None:
    lows = [backoff(attempt, rng=lambda: 0.0) for attempt in range(6)]
    highs = [backoff(attempt, rng=lambda: 1.0) for attempt in range(6)]

    assert lows == [0.5, 1, 2, 4, 8, 16]  # half of each ceiling is fixed
    assert highs == [1, 2, 4, 8, 16, 32]  # the ceiling: 1 s, doubling
    assert backoff(2, base=0.25, rng=lambda: 0.5) == pytest.approx(0.75)


def test_backoff_stays_within_half_the_cap_and_the_cap_once_capped() -> None:
    rng = random.Random(24).random
    capped = [backoff(attempt, cap=60.0, rng=rng) for attempt in range(6, 200) for _ in range(5)]

    assert all(30.0 <= wait <= 60.0 for wait in capped)
    assert max(capped) - min(capped) > 20  # the jitter is really there
    assert backoff(10**6, cap=60.0, rng=lambda: 1.0) == 60.0  # no overflow however late
    with pytest.raises(ValueError, match="attempt"):
        backoff(-1)


async def test_used_is_the_share_of_the_last_minute_s_budget_spent() -> None:
    clock = Clock()
    bucket = budget(clock, rate=5.0)
    assert bucket.used() == 0
    await granted(clock, bucket, 150)  # 150 requests at 5 a second: 30 s, half a minute's 300
    assert bucket.used() == pytest.approx(150 / 300)
    clock.now += 40.1  # the last went at 29.8 s: the 50 of the first 10 s are a minute old
    assert bucket.used() == pytest.approx(100 / 300)
    clock.now += 21.0
    assert bucket.used() == 0
