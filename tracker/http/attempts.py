"""Wrong tokens, counted per client: past a budget, the client is told to wait (429) and its
tokens are not even compared until the window ends. Guessing a token through the API then goes
at `BUDGET` tries a minute per address (and per server process), not as fast as the network.

Only failures count: the platform, posting thousands of deliveries with the right token, is
never slowed by its own successes, and a correct token from an address under budget always
passes. A success does not clear the count either, or one client holding the token would
reopen the budget for another that shares its address. Nothing sleeps: a refusal is immediate.

Memory is bounded: the `CLIENTS` most recently failing addresses are remembered, the oldest
forgotten first. IPv6 clients count by their /64, which one host usually holds whole.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

from tracker.http.errors import ApiError

BUDGET = 20  # wrong tokens per client per window
WINDOW = 60.0  # seconds, from the client's first failure in the window
CLIENTS = 10_000  # addresses remembered, at most (about 1.5 MB)


class FailedAttempts:
    """Failures per client in a fixed window that opens at the first failure."""

    def __init__(
        self,
        budget: int = BUDGET,
        window: float = WINDOW,
        clients: int = CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget, self.window, self.clients, self.clock = budget, window, clients, clock
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds `client` must wait before a token of theirs is compared again; None: go on."""
        entry = self._failures.get(client)
        if entry is None:
            return None
        opened, count = entry
        left = opened + self.window - self.clock()
        if left <= 0:
            del self._failures[client]
            return None
        return math.ceil(left) if count >= self.budget else None

    def failed(self, client: str) -> None:
        now = self.clock()
        opened, count = self._failures.pop(client, (now, 0))
        if opened + self.window <= now:
            opened, count = now, 0
        self._failures[client] = (opened, count + 1)  # re-inserted: now the newest
        while len(self._failures) > self.clients:
            self._failures.popitem(last=False)

    def check(self, client: str) -> None:
        """Raise the 429 if `client` is over budget."""
        wait = self.retry_after(client)
        if wait is not None:
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many wrong tokens from this address; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )


ATTEMPTS = web.AppKey("attempts", FailedAttempts)  # this process's count of wrong tokens


def client_of(request: web.Request) -> str:
    """The address failures are counted under (behind a trusted proxy, the forwarded one)."""
    remote = request.remote or "unknown"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote  # a Unix socket, or a peer aiohttp could not name
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
