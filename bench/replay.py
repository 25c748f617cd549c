"""Replay rate and swap pause: `python -m bench.replay [--events N] [--swaps K]`.

1. Loads N fleet-like events through the live write path (decode, append, project), batched.
2. Times `replay` (rebuild + swap) against a baseline measured in the same run: a plain
   sequential read of the same log through an asyncpg server-side cursor.
3. Runs K replays while 32 clients post to a real `tracker serve`, and reports each swap's
   pause (the time the append lock was held) and the clients' slowest answer meanwhile.
4. Ends with `replay --check`.

Uses TRACKER_BENCH_DATABASE_URL if set, else an embedded PostgreSQL in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.fleet import rollout
from tests.support.postgres import EmbeddedPostgres, create_database, drop_database
from tests.support.server import TrackerProcess
from tracker.domain.delivery import decode
from tracker.store import log
from tracker.store.database import Database
from tracker.store.migrations import migrate
from tracker.store.replay import replay


def fleet_bodies(count: int, prefix: str) -> list[bytes]:
    bodies: list[bytes] = []
    round_ = 0
    while len(bodies) < count:
        for script in rollout(f"{prefix}{round_}", devices=500, tasks=20, seed=round_):
            bodies.extend(script.bodies)
        round_ += 1
    return bodies[:count]


async def load(url: str, bodies: list[bytes], batch: int = 1000) -> float:
    database = await Database.open(url, timeout=60, size=2)
    started = time.monotonic()
    try:
        for start in range(0, len(bodies), batch):
            events = [decode(raw) for raw in bodies[start : start + batch]]
            async with database.transaction("load") as conn:
                await log.record(conn, events, datetime.now(UTC))
    finally:
        await database.close()
    return time.monotonic() - started


async def sequential_read(url: str) -> float:
    conn = await asyncpg.connect(url)
    started = time.monotonic()
    count = 0
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for _ in conn.cursor(
            "SELECT position, received_at, raw FROM events ORDER BY position", prefetch=10_000
        ):
            count += 1
    await conn.close()
    return count / (time.monotonic() - started)


async def replay_process(url: str) -> float:
    """`tracker replay` as its own process, as an operator runs it; returns the swap pause."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tracker",
        "replay",
        env={**os.environ, "TRACKER_DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    output = (await process.communicate())[0].decode()
    if process.returncode != 0:
        raise RuntimeError(output)
    return float(output.split("ingestion paused ")[1].split(" ms")[0])


@dataclass
class Latencies:
    quiet: list[float] = field(default_factory=list)  # no replay running
    replaying: list[float] = field(default_factory=list)  # a replay (and its swap) running


async def swaps_under_load(url: str, swaps: int, workdir: Path) -> tuple[list[float], Latencies]:
    env = {"TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": "WARNING"}
    server = TrackerProcess(env, workdir / "server.log").start()
    bodies = fleet_bodies(50_000, "live")
    stop, measuring, seen = asyncio.Event(), [False], Latencies()
    phase = [seen.quiet]

    async def client(session: aiohttp.ClientSession, offset: int) -> None:
        index = offset
        while not stop.is_set():
            began = time.monotonic()
            url = f"{server.url}/v1/notifications"
            async with session.post(url, data=bodies[index % len(bodies)]) as response:
                if response.status != 200:
                    raise RuntimeError(await response.text())
            if measuring[0]:
                phase[0].append(time.monotonic() - began)
            index += 32

    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            clients = [asyncio.create_task(client(session, i)) for i in range(32)]
            await asyncio.sleep(2)  # warm up
            measuring[0] = True
            pauses = []
            for _ in range(swaps):
                phase[0] = seen.quiet
                await asyncio.sleep(2)
                phase[0] = seen.replaying
                pauses.append(await replay_process(url))
            stop.set()
            await asyncio.gather(*clients)
    finally:
        server.stop()
    return pauses, seen


def table(rows: list[tuple[str, str]]) -> None:
    print("\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()


def _each(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def summary(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = ms[len(ms) // 2], ms[int(len(ms) * 0.99)]
    return f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms ({len(ms):,} requests)"


async def main(events: int, swaps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server_url = os.environ.get("TRACKER_BENCH_DATABASE_URL")
        embedded = None
        if not server_url:
            embedded = EmbeddedPostgres(Path(tmp))
            server_url = embedded.url
        url = await asyncio.to_thread(create_database, server_url)
        try:
            conn = await asyncpg.connect(url)
            await migrate(conn)
            await conn.close()
            bodies = fleet_bodies(events, secrets.token_hex(3))
            load_s = await load(url, bodies)
            print(f"loaded {events:,} events through the live path in {load_s:.1f} s")
            baseline = await sequential_read(url)
            rates = [(await replay(url, check=False)).rate for _ in range(3)]
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            pauses, latencies = await swaps_under_load(url, swaps, Path(tmp))
            check = await replay(url, check=True)
            median = statistics.median(rates)
            table(
                [
                    ("events in the log", f"{check.events:,}"),
                    ("replay rate, median of 3", f"{median:,.0f} events/s ({_each(rates)})"),
                    ("baseline: sequential cursor read", f"{baseline:,.0f} events/s"),
                    ("replay / baseline", f"{median / baseline:.2f}"),
                    ("peak RSS of this process (replays ran in it)", f"{rss_mb:,.0f} MB"),
                    (
                        "swap pauses (append lock held), 32 clients posting",
                        f"{_each(pauses)} ms; longest {max(pauses):.0f} ms",
                    ),
                    ("client answers, no replay running", summary(latencies.quiet)),
                    ("client answers, replay process running", summary(latencies.replaying)),
                    ("replay --check after", f"{len(check.drift)} differences"),
                ]
            )
            figures = {"events": check.events, "rates": rates, "baseline": baseline}
            print(json.dumps({**figures, "pauses_ms": pauses}))
        finally:
            await asyncio.to_thread(drop_database, url)
            if embedded:
                embedded.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--swaps", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.swaps))
