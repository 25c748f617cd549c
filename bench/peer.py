"""The peer: the same deliveries appended one per transaction through `eventsourcing`'s
PostgreSQL application recorder (the `bench` extra pins the version), from a thread pool.

The pool size that suits it best differs by machine (its client code is CPU-bound and its
appends serialise), so a one-second probe of each of a few sizes picks it, and only the best
is measured: the target is against the peer at its best.

Each delivery becomes a stored event of its stream (device or task id), versioned in arrival
order; like the tracker, the recorder serialises appends (a table lock) so that a follower never
skips an event that commits late. It is the closest widely used Python equivalent of our log.

Two modes: one event per transaction (a delivery, saved as it comes), and its best mode,
`BEST_PER_SAVE` events per `insert_events` call (one transaction), as an application saving
several aggregates' pending events at once may (`Application.save(*objs)`): the target is
against the best.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from importlib import metadata
from typing import Any

from bench.load import Load
from bench.postgres import libpq_parts
from bench.procfs import Window, own_seconds
from bench.workload import Row

THREADS = (1, 4, 16)  # pool sizes probed
BEST_PER_SAVE = 100  # events per save in the peer's best mode (about our group commit's batch)
PROBE_SECONDS = 1
SKIPPED = "peer: skipped (pip install -e '.[bench]')"


def version() -> str | None:
    try:
        return metadata.version("eventsourcing")
    except metadata.PackageNotFoundError:
        return None


def available() -> bool:
    try:
        import eventsourcing.postgres  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def append_rate(url: str, rows: list[Row], seconds: int, warmup: int, per_save: int = 1) -> Load:
    from eventsourcing.postgres import (  # noqa: PLC0415 - an optional extra
        PostgresApplicationRecorder,
        PostgresDatastore,
    )

    parts = libpq_parts(url)
    datastore = PostgresDatastore(
        parts["dbname"],
        parts["host"],
        parts["port"],
        parts["user"],
        parts["password"],
        pool_size=max(THREADS),
        originator_id_type="text",
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="peer_events")
        recorder.create_table()
        append = _appender(recorder, rows, per_save)
        probes = {n: _run(append, n, PROBE_SECONDS, 0, per_save).rate for n in THREADS}
        best = max(probes, key=lambda n: probes[n])
        return _run(append, best, seconds, warmup, per_save)
    finally:
        with contextlib.suppress(Exception):
            datastore.close()


def _appender(recorder: Any, rows: list[Row], per_save: int) -> Callable[[], None]:  # noqa: ANN401 - optional
    """A function that appends the next `per_save` deliveries as stored events, in one
    transaction."""
    from eventsourcing.persistence import StoredEvent  # noqa: PLC0415

    upcoming, lock = itertools.count(), threading.Lock()
    versions: dict[str, int] = defaultdict(int)

    def append() -> None:
        events = []
        with lock:  # versions keep counting if the bodies wrap around
            for _ in range(per_save):
                r = rows[next(upcoming) % len(rows)]
                versions[r.stream_id] += 1
                number = versions[r.stream_id]
                events.append(StoredEvent(r.stream_id, number, f"tracker:{r.event_type}", r.body))
        recorder.insert_events(events)

    return append


def _run(
    append: Callable[[], None], threads: int, seconds: float, warmup: float, per_save: int
) -> Load:
    latencies: list[float] = []
    measuring, stopping = threading.Event(), threading.Event()

    def appender() -> None:
        while not stopping.is_set():
            began = time.perf_counter()
            append()
            if measuring.is_set():
                latencies.append(time.perf_counter() - began)

    pool = [threading.Thread(target=appender) for _ in range(threads)]
    try:
        for thread in pool:
            thread.start()
        time.sleep(warmup)
        window, cpu_before = Window(None), own_seconds()
        measuring.set()
        started = time.monotonic()
        time.sleep(seconds)
        measuring.clear()
        elapsed = time.monotonic() - started
        cpu, client_cpu = window.end(), own_seconds() - cpu_before
    finally:
        stopping.set()
        for thread in pool:
            thread.join()
    saves = "1 event" if per_save == 1 else f"{per_save} events"
    return Load.in_process(
        f"eventsourcing, {threads} threads, {saves} a save (this process)",
        threads,
        latencies,
        seconds=elapsed,
        generator_cpu_seconds=client_cpu,
        cpu=cpu,
        per=per_save,
    )
