"""`python -m bench reconcile`: the IoTDA reconciler reading one large task in full, at fleet size.

The fake of IoTDA's API (tests/support/fake_iotda.py) runs in a process of its own with one
upgrade task of `--devices` devices; the reconciler reads it through Huawei's SDK, as `tracker
reconcile` does, with no request budget (the fake does not throttle), into a fresh database:

1. a cold pass: every device is new, so each is appended;
2. 1% of the devices move (the fake moves them on SIGUSR1), and a second pass reads the task in
   full again: only those are appended;
3. the baseline, in the same run: the same pages read by the SDK alone, with no database.

It prints the passes' rates, the ratio of the reconciler's page rate to the bare SDK's, the
process's memory at a tenth of the cold pass and at its end (flat: a page at a time), and the
request arithmetic of a full sweep at the default budget (TRACKER_IOTDA_RATE).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from bench import processes
from bench.postgres import connected, count_events, fresh_database, server
from tracker.iotda.api import PlatformApi
from tracker.iotda.budget import DEFAULT_RATE, Budget
from tracker.iotda.credentials import Credentials
from tracker.iotda.reconciler import PAGE, PAGES_PER_VISIT, Reconciler
from tracker.store import iotda as store
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit

ANALYZE_EVERY = 10.0  # seconds
FAKE = """
import asyncio, signal, sys
from tests.support.fake_iotda import FakeIoTDA

async def main(devices: int, moved: int) -> None:
    async with FakeIoTDA() as fake:
        task = fake.create_task(devices, task_type="firmwareUpgrade", app_id="bench")
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: task.set_range(0, moved, "Success"))
        print(fake.port, task.task_id, fake.ak, fake.sk, fake.project_id, flush=True)
        await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


@dataclass
class Pass:
    seconds: float
    requests: int
    appended: int

    @property
    def pages_per_second(self) -> float:
        return self.requests / self.seconds


def rss_mb() -> float:
    """This process's resident memory now, from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def read_all(db: Database, api: PlatformApi, task_id: str, memory: list[float]) -> Pass:
    appends = GroupCommit(db)
    reconciler = Reconciler(db, api, Budget(1e6), appends, ())
    sweep = await store.sweep(db, task_id)
    assert sweep is not None  # noqa: S101 - found just before
    sweep.marker, started = None, time.monotonic()
    checkpoint = reconciler.visit(sweep, max_pages=None)
    watch = asyncio.create_task(_watch(db, memory))
    try:
        await checkpoint
    finally:
        watch.cancel()
        await appends.close()
    return Pass(
        time.monotonic() - started,
        reconciler.tally.requests,
        sum(reconciler.tally.appended.values()),
    )


async def _watch(db: Database, memory: list[float]) -> None:
    """The process's memory every second, and ANALYZE every ANALYZE_EVERY seconds, as
    autovacuum would: the development machines' PostgreSQL runs with it off, and a projection
    growing from empty keeps the plans made for an empty table (bench/README.md)."""
    analysed = time.monotonic()
    while True:
        memory.append(rss_mb())
        await asyncio.sleep(1.0)
        if time.monotonic() - analysed > ANALYZE_EVERY:
            async with db.pool.acquire() as conn:
                await conn.execute("ANALYZE operation_devices, devices, device_tracks")
            analysed = time.monotonic()


async def bare(api: PlatformApi, task_id: str, pages: int) -> Pass:
    """The baseline: the same pages, read by the SDK alone."""
    started, marker, read = time.monotonic(), None, 0
    while read < pages:
        answer = await api.show_task(task_id, marker=marker, limit=PAGE)
        read += 1
        marker = (answer.document.get("page") or {}).get("marker")
        if not marker:
            break
    return Pass(time.monotonic() - started, read, 0)


async def run(
    fake: subprocess.Popen[str], devices: int, moved: int, server_url: str
) -> dict[str, object]:
    assert fake.stdout is not None  # noqa: S101
    port, task_id, ak, sk, project = fake.stdout.readline().split()
    credentials = Credentials(f"http://127.0.0.1:{port}", project, ak, sk)
    async with fresh_database(server_url) as url, PlatformApi(credentials) as api:
        db = await Database.open(url, timeout=60, size=4)
        try:
            found: list[tuple[str, str | None, str, str]] = [
                (task_id, "bench", "firmwareUpgrade", "")
            ]
            await store.found(db, found, datetime.now(UTC), revive=True)
            memory: list[float] = []
            cold = await read_all(db, api, task_id, memory)
            fake.send_signal(signal.SIGUSR1)
            await asyncio.sleep(0.5)
            warm = await read_all(db, api, task_id, [])
            events = await count_events(url)
            async with connected(url) as conn:
                members = await conn.fetchval("SELECT devices FROM operations")
        finally:
            await db.close()
        baseline = await bare(api, task_id, min(cold.requests, 2000))
    # A sweep in `serve`: its pages, read PAGES_PER_VISIT a visit; every visit after the first
    # starts with a head read, and each may read a page of failed and of retrying devices.
    pages = math.ceil(devices / PAGE)
    visits = math.ceil(pages / PAGES_PER_VISIT)
    requests = (pages + visits - 1, pages + visits - 1 + 2 * visits)
    return {
        "devices": devices,
        "moved": moved,
        "cold": cold.__dict__,
        "warm": warm.__dict__,
        "bare": baseline.__dict__,
        "events": events,
        "members": members,
        "rss_mb": {
            "tenth": memory[len(memory) // 10] if memory else None,
            "end": memory[-1] if memory else None,
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "requests_per_sweep": requests,
        "sweep_minutes_at_default_rate": [r / DEFAULT_RATE / 60 for r in requests],
    }


def table(figures: dict[str, object]) -> str:
    cold, warm, bare_ = (Pass(**figures[k]) for k in ("cold", "warm", "bare"))  # type: ignore[arg-type]
    ratio = cold.pages_per_second / bare_.pages_per_second
    warm_ratio = warm.pages_per_second / bare_.pages_per_second
    rss = figures["rss_mb"]
    assert isinstance(rss, dict)  # noqa: S101
    low, high = cast("tuple[int, int]", figures["requests_per_sweep"])
    fast, slow = cast("tuple[float, float]", figures["sweep_minutes_at_default_rate"])
    rows = [
        ("devices in the task", f"{figures['devices']:,}", ""),
        (
            "cold pass: every device new",
            f"{cold.requests:,} requests in {cold.seconds:,.1f} s, {cold.appended:,} appended",
            f"{cold.pages_per_second:,.1f} pages/s ({ratio:.2f}x bare SDK)",
        ),
        (
            f"second pass: {figures['moved']:,} devices moved",
            f"{warm.requests:,} requests in {warm.seconds:,.1f} s, {warm.appended:,} appended",
            f"{warm.pages_per_second:,.1f} pages/s ({warm_ratio:.2f}x bare SDK)",
        ),
        (
            "baseline: the SDK alone, same pages",
            f"{bare_.requests:,} requests in {bare_.seconds:,.1f} s",
            f"{bare_.pages_per_second:,.1f} pages/s",
        ),
        (
            "memory (RSS) at 10% / end of the cold pass",
            f"{rss['tenth']:.0f} / {rss['end']:.0f} MB",
            "",
        ),
        (
            "a full sweep at the default budget",
            f"{low:,}-{high:,} requests at {DEFAULT_RATE:g}/s",
            f"{fast:,.1f}-{slow:,.1f} min",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b:<55}  {c}" for a, b, c in rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench reconcile", description=__doc__)
    parser.add_argument("--devices", type=int, help="devices in the task (100,000; smoke 500)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    devices = args.devices or (500 if args.smoke else 100_000)
    moved = max(1, devices // 100)
    with server() as (url, origin):
        print(f"PostgreSQL: {origin}", file=sys.stderr)
        fake = subprocess.Popen(
            [sys.executable, "-c", FAKE, str(devices), str(moved)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=processes.ROOT,
        )
        try:
            figures = asyncio.run(run(fake, devices, moved, url))
        finally:
            fake.terminate()
            fake.wait(timeout=10)
    print(table(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0
