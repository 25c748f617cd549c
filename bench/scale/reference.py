"""Bytes per event on the reference's own bodies, so the storage target compares like with like.

The reference (675 bytes per event in `events`, before bodies were stored once and compressed)
was measured on 200,000 fleet bodies of 208 bytes on average from bench/workload.fleet. The same
bodies (ids with the prefix that gives that mean) go through the same COPY loader into a fresh
database, then VACUUM (ANALYZE), then pg_total_relation_size('events') over its row count. (On
the tracker before that change, this method gave 705 bytes per event on 216-byte bodies.)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench import workload
from bench.postgres import fresh_database
from bench.scale import commands, copyload

REFERENCE_BYTES_PER_EVENT = 675  # measured on 200,000 bodies of 208 B from bench/workload.fleet
REFERENCE_BODY_BYTES = 208
BYTES_TARGET = 0.6 * REFERENCE_BYTES_PER_EVENT
BODIES = 200_000
PREFIX = "b-"  # gives bench/workload.fleet's bodies a mean of 208 bytes


@dataclass(frozen=True, slots=True)
class Reference:
    bodies: int
    mean_body: float
    storage: commands.Storage

    @property
    def per_event(self) -> float:
        return self.storage.per_event(self.storage.total)


async def measure(server_url: str, count: int = BODIES) -> Reference:
    bodies = list(workload.fleet(count, PREFIX))
    async with fresh_database(server_url) as url:
        start = time.time_ns() // 1000
        deliveries = ((start + i, body) for i, body in enumerate(bodies))
        loaded = await copyload.load(url, deliveries, count)
        await commands.timed(url, "VACUUM (ANALYZE)")
        return Reference(count, loaded.mean_body, await commands.storage(url))
