"""The wrong-token budget per client (http/attempts.py), on a clock the test turns by hand."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from tracker.http.attempts import BUDGET, WINDOW, FailedAttempts, client_of
from tracker.http.errors import ApiError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_waits_once_over_budget_and_only_until_the_window_ends() -> None:
    clock = Clock()
    attempts = FailedAttempts(clock=clock)
    for _ in range(BUDGET - 1):
        attempts.failed("203.0.113.7")
    assert attempts.retry_after("203.0.113.7") is None  # 19 wrong: the 20th try is compared
    attempts.failed("203.0.113.7")
    clock.now += 10.2
    assert attempts.retry_after("203.0.113.7") == 50  # seconds left of the window, rounded up
    assert attempts.retry_after("203.0.113.8") is None  # another client is not touched
    with pytest.raises(ApiError) as refused:
        attempts.check("203.0.113.7")
    assert refused.value.status == 429
    assert refused.value.code == "too_many_attempts"
    assert refused.value.headers == {"Retry-After": "50"}
    clock.now += WINDOW - 10.2
    assert attempts.retry_after("203.0.113.7") is None  # the window passed: a fresh budget
    attempts.failed("203.0.113.7")
    assert attempts.retry_after("203.0.113.7") is None


def test_the_window_opens_at_the_first_failure_not_the_last() -> None:
    """Spacing guesses out does not keep the count alive beyond its window."""
    clock = Clock()
    attempts = FailedAttempts(clock=clock)
    for _ in range(BUDGET - 1):
        attempts.failed("a")
        clock.now += 3.0  # 19 failures over 57 s
    clock.now += 3.0  # 60 s after the first
    attempts.failed("a")
    assert attempts.retry_after("a") is None  # a new window with one failure in it


def test_memory_is_bounded_forgetting_the_oldest() -> None:
    attempts = FailedAttempts(budget=1, clients=3, clock=Clock())
    for client in ("a", "b", "c"):
        attempts.failed(client)
    attempts.failed("a")  # "a" fails again: now the newest
    attempts.failed("d")  # over three: "b", the oldest, is forgotten
    assert [attempts.retry_after(c) for c in "abcd"] == [60, None, 60, 60]


@pytest.mark.parametrize(
    ("remote", "client"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # an IPv4 client on a dual-stack socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one host usually holds its whole /64
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
    ],
)
def test_clients_are_counted_by_address_and_ipv6_by_its_64(remote: str, client: str) -> None:
    request = make_mocked_request("GET", "/").clone(remote=remote)
    assert client_of(request) == client
