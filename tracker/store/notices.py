"""Being woken by a NOTIFY (the outbox's, the stops owed): a connection of its own, outside
the pool, that sets an event on every notice and comes back after an outage. A missed notice
only delays: whoever waits also polls."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)


async def listen(url: str, channel: str, wake: asyncio.Event, retry: float) -> None:
    """Set `wake` on every notice on `channel`, and once on each (re)connection (something may
    have committed while away), until cancelled."""
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            log.debug("listener on %s cannot connect yet: %s", channel, error)
            await asyncio.sleep(retry)
            continue
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _, lost=lost: lost.set())
            await conn.add_listener(channel, lambda *_: wake.set())
            wake.set()
            await lost.wait()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.debug("listener on %s lost its connection: %s", channel, error)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
        await asyncio.sleep(1)
