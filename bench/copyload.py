"""Rows of `events` written around the append path: the COPY loader of the fleet benchmarks, and
the rows of the storage ceilings.

Each body goes through `tracker.domain.delivery.decode` (what ingestion validates it with) and
`copy_row`: its stored form (`bodies.pack`) and its link of the stream's hash chain
(`chain.all_fields`), as `tracker_append` makes them, so `tracker verify` and replay accept the
loaded log. The loader COPYs batches with asyncpg's `copy_records_to_table`, in arrival order, at
positions drawn here from 1 on (so positions follow `received_at`), then moves the log's sequence
past them. A thread generates and decodes the next batch while PostgreSQL takes the last one.

It must be the log's only writer (it keeps every stream's hash head itself), so it loads a fresh
database. Projections are not written: `tracker replay` builds them afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg

from tracker.domain.delivery import NewEvent, decode
from tracker.store import bodies, chain
from tracker.store.events import LoggedEvent

COLUMNS = (
    *("position", "stream_type", "stream_id", "event_type", "raw", "codec"),
    *("received_at", "occurred_at", "chain", "hash"),
)
# After a bulk load, the positions the next append draws follow the loaded ones.
FOLLOW_LOADED = (
    "SELECT setval(pg_get_serial_sequence('events', 'position'), max(position)) FROM events "
    "HAVING max(position) IS NOT NULL"
)
BATCH = 50_000
PROGRESS_EVERY = 10.0  # seconds between progress lines
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Record = tuple[object, ...]


def copy_row(event: NewEvent, position: int, received_at: datetime, head: bytes | None) -> Record:
    """`event` as one record of `COLUMNS` at `position`, chained to its stream's `head` (the
    record's last element is the new head). `bodies.ready` must have run on the database."""
    codec, stored = bodies.pack(event.raw)
    logged = LoggedEvent(
        position,
        event.stream_type,
        event.stream_id,
        event.event_type,
        event.raw,
        received_at,
        event.occurred_at,
        event.readmitted_from,
    )
    link = chain.all_fields(head, logged)
    fields = (position, event.stream_type, event.stream_id, event.event_type, stored, codec)
    return (*fields, received_at, event.occurred_at, chain.ALL_FIELDS, link)


@dataclass
class Loaded:
    events: int = 0
    streams: int = 0
    body_bytes: int = 0  # of the bodies as received
    seconds: float = 0.0  # wall time, first body generated to last COPY committed
    generate_seconds: float = 0.0  # the producer thread's share: making the bodies
    decode_seconds: float = 0.0  # ... and decode + copy_row
    copy_seconds: float = 0.0  # waiting for COPY (PostgreSQL, and asyncpg encoding)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    @property
    def generation_rate(self) -> float:
        return self.events / self.generate_seconds if self.generate_seconds else 0.0

    @property
    def mean_body(self) -> float:
        return self.body_bytes / self.events if self.events else 0.0


class _Producer(threading.Thread):
    """Generates and decodes batches into a short queue; None ends it, an exception is passed."""

    def __init__(self, deliveries: Iterator[tuple[int, bytes]], loaded: Loaded) -> None:
        super().__init__(name="copyload-producer", daemon=True)
        self.deliveries, self.loaded = deliveries, loaded
        self.batches: queue.Queue[list[Record] | BaseException | None] = queue.Queue(maxsize=2)
        self.stopping = threading.Event()

    def run(self) -> None:
        heads: dict[tuple[str, str], bytes] = {}
        positions = itertools.count(1)
        try:
            while not self.stopping.is_set():
                began = time.perf_counter()
                batch = list(itertools.islice(self.deliveries, BATCH))
                made = time.perf_counter()
                if not batch:
                    break
                records = []
                for at, body in batch:
                    event = decode(body)
                    key = (event.stream_type, event.stream_id)
                    at_time = EPOCH + timedelta(microseconds=at)
                    records.append(copy_row(event, next(positions), at_time, heads.get(key)))
                    heads[key] = cast("bytes", records[-1][-1])  # the stream's new head
                    self.loaded.body_bytes += len(body)
                self.loaded.generate_seconds += made - began
                self.loaded.decode_seconds += time.perf_counter() - made
                self.loaded.streams = len(heads)
                self.batches.put(records)
            self.batches.put(None)
        except BaseException as error:  # noqa: BLE001 - handed to the loader, which raises it
            self.batches.put(error)


async def load(url: str, deliveries: Iterator[tuple[int, bytes]], expected: int) -> Loaded:
    """COPY `deliveries` ((received_at in µs since the epoch, body)) into the empty log at
    `url`, printing progress."""
    loaded, conn = Loaded(), await asyncpg.connect(url)
    try:
        await bodies.ready(conn)
        producer = _Producer(deliveries, loaded)
        started = last_said = time.monotonic()
        producer.start()
        try:
            while (records := await asyncio.to_thread(producer.batches.get)) is not None:
                if isinstance(records, BaseException):
                    raise records
                waited = time.perf_counter()
                await conn.copy_records_to_table("events", records=records, columns=COLUMNS)
                loaded.copy_seconds += time.perf_counter() - waited
                loaded.events += len(records)
                if time.monotonic() - last_said >= PROGRESS_EVERY:
                    last_said, rate = time.monotonic(), loaded.events / (time.monotonic() - started)
                    print(f"  loading: {loaded.events:,} of ~{expected:,} events, {rate:,.0f}/s")
        finally:
            producer.stopping.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    producer.batches.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.01)
        await conn.execute(FOLLOW_LOADED)
        loaded.seconds = time.monotonic() - started
    finally:
        await conn.close()
    return loaded
