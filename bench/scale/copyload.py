"""The COPY loader: the fleet's deliveries straight into `events`, bypassing HTTP, not validation.

Each body goes through `tracker.domain.delivery.decode` (what ingestion validates it with) and
`tracker.store.events.copy_row` (the table's columns and the stream's hash chain, as the store
defines them: this module never names a column). Batches go in with asyncpg's
`copy_records_to_table`, one COPY each, in arrival order, at positions drawn here from 1 on, so
positions follow `received_at`; the log's sequence is moved past them at the end.
A thread generates and decodes the next batch while PostgreSQL takes the last one.

It must be the log's only writer (it keeps every stream's hash head itself), so it loads a
fresh database. Projections are not written: `tracker replay` builds them afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

import asyncpg

from bench.eventrows import prepare
from tracker.domain.delivery import decode
from tracker.store.events import COPY_COLUMNS, FOLLOW_LOADED, copy_row

BATCH = 50_000
PROGRESS_EVERY = 10.0  # seconds between progress lines
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Record = tuple[object, ...]


@dataclass
class Loaded:
    events: int = 0
    streams: int = 0
    body_bytes: int = 0  # of the bodies as received
    seconds: float = 0.0  # wall time, first body generated to last COPY committed
    generate_seconds: float = 0.0  # the producer thread's share: making the bodies
    decode_seconds: float = 0.0  # ... and decode + copy_row
    copy_seconds: float = 0.0  # waiting for COPY (PostgreSQL, and asyncpg encoding)
    batches: list[int] = field(default_factory=list)

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
                    record = copy_row(
                        event, next(positions), EPOCH + timedelta(microseconds=at), heads.get(key)
                    )
                    heads[key] = cast("bytes", record[-1])  # the stream's new head
                    records.append(record)
                    self.loaded.body_bytes += len(body)
                self.loaded.generate_seconds += made - began
                self.loaded.decode_seconds += time.perf_counter() - made
                self.loaded.streams = len(heads)
                self.batches.put(records)
            self.batches.put(None)
        except BaseException as error:  # noqa: BLE001 - handed to the loader, which raises it
            self.batches.put(error)


async def load(url: str, deliveries: Iterator[tuple[int, bytes]], expected: int) -> Loaded:
    """COPY `deliveries` into the (empty) log at `url`, printing progress."""
    loaded = Loaded()
    conn = await asyncpg.connect(url)
    try:
        await prepare(conn)
        producer = _Producer(deliveries, loaded)
        started = last_said = time.monotonic()
        producer.start()
        try:
            while (records := await asyncio.to_thread(producer.batches.get)) is not None:
                if isinstance(records, BaseException):
                    raise records
                waited = time.perf_counter()
                await conn.copy_records_to_table("events", records=records, columns=COPY_COLUMNS)
                loaded.copy_seconds += time.perf_counter() - waited
                loaded.events += len(records)
                loaded.batches.append(len(records))
                if time.monotonic() - last_said >= PROGRESS_EVERY:
                    last_said, seconds = time.monotonic(), time.monotonic() - started
                    print(
                        f"  loading: {loaded.events:,} of ~{expected:,} events, "
                        f"{loaded.events / seconds:,.0f}/s",
                        flush=True,
                    )
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
