"""`python -m bench`: every figure of the tracker against baselines measured in the same run.

Starts its own PostgreSQL (or uses TRACKER_BENCH_DATABASE_URL), runs the tracker as a real server
process, prints markdown tables and writes the raw figures as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import ceilings, disk, peer, postgres, procfs, query, replay_rate, report, swap, workload
from bench.facts import facts
from bench.ingest import CONNECTIONS, IngestSummary, ingest_run
from bench.load import Load, wrk_script
from bench.processes import ROOT
from bench.server import INGEST_HEADERS

MEASUREMENTS = (
    "disk",
    "ceiling-a",
    "ceiling-c",
    "ceiling-b",
    "peer",
    "ingest",
    "ingest-workers2",
    "ingest-servers2",
    "replay",
    "query",
)
QUERY_ONLY_EVENTS = 100_000  # loaded for `--only query` when the replay's log is not there
QUERY_DEVICES = 20_000
SWAP_BODIES = 20_000  # what the clients post during the swap measurement (new devices)


@dataclass(frozen=True, slots=True)
class Options:
    seconds: int
    warmup: int
    replay_events: int
    runs: int
    json: Path
    only: tuple[str, ...]
    smoke: bool
    connections: int

    def summary(self) -> dict[str, object]:
        return {
            "smoke": self.smoke,
            "duration": f"{self.seconds} s",
            "warm-up": f"{self.warmup} s",
            "runs": self.runs,
            "connections": self.connections,
            "replay events": f"{self.replay_events:,}",
            "only": ",".join(self.only),
        }


def options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the tracker against baselines taken in the same run.",
        epilog="`python -m bench scale --help`: the fleet-scale benchmark (bench/scale/); "
        "`python -m bench dashboard --help`: the dashboard's pages at fleet size.",
    )
    parser.add_argument("--smoke", action="store_true", help="tiny run of every path (CI)")
    parser.add_argument("--duration", type=int, help="seconds per load run (20; smoke 2)")
    parser.add_argument("--replay-events", type=int, help="log size (1,000,000; smoke 5,000)")
    parser.add_argument("--runs", type=int, help="ingest and replay repeats (3; smoke 1)")
    parser.add_argument(
        "--connections", type=int, default=CONNECTIONS, help="ingest and ceiling B (64)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=ROOT / "bench/results/latest.json",
        help="where the raw figures go (bench/results/latest.json)",
    )
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(MEASUREMENTS)}")
    args = parser.parse_args(argv)
    only = tuple(args.only.split(",")) if args.only else MEASUREMENTS
    if unknown := set(only) - set(MEASUREMENTS):
        parser.error(f"unknown measurement(s) {sorted(unknown)}; choose from {MEASUREMENTS}")
    smoke = args.smoke
    seconds = args.duration or (2 if smoke else 20)
    return Options(
        seconds=seconds,
        warmup=1 if smoke or seconds < 10 else 2,
        replay_events=args.replay_events or (5_000 if smoke else 1_000_000),
        runs=args.runs or (1 if smoke else 3),
        json=args.json,
        only=only,
        smoke=smoke,
        connections=args.connections,
    )


def _say(name: str, load: Load) -> None:
    print(
        f"  {name}: {load.rate:,.0f}/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms"
        f"{f', {load.errors:,} errors' if load.errors else ''}; "
        f"{load.generator} used {load.generator_cpu_percent:.0f}% of a core",
        flush=True,
    )


async def run(o: Options, server_url: str, results: report.Results, workdir: Path) -> None:
    wanted = set(o.only)
    # Enough distinct bodies that runs rarely wrap around (a repeat is a platform retry anyway).
    count = min(max(o.seconds * 10_000, 20_000), 300_000)
    bodies = list(workload.fleet(count, f"b{secrets.token_hex(2)}-"))
    lines = workload.write_lines(workdir / "bodies.jsonl", bodies)
    post = wrk_script(workdir / "post.lua", "post", lines, "/v1/notifications", INGEST_HEADERS)
    rows = [workload.row(b) for b in bodies] if wanted & {"ceiling-a", "ceiling-c", "peer"} else []
    print(f"workload: {len(bodies):,} fleet bodies ({lines})", flush=True)

    if "disk" in wanted:
        method = str(results.facts["postgres"].get("wal_sync_method", "fdatasync"))
        results.fsync = (method, await asyncio.to_thread(disk.ops_per_second, method))
        print(
            f"disk: pg_test_fsync {method}: {results.fsync[1] or 'not measured'} ops/s", flush=True
        )
    if "ceiling-a" in wanted:
        print("ceiling A: asyncpg INSERT + COMMIT per delivery", flush=True)
        async with postgres.fresh_database(server_url) as url:
            results.ceiling_a = await ceilings.storage(url, rows, o.seconds, o.warmup)
        _say("ceiling A", results.ceiling_a)
    if "ceiling-c" in wanted:
        print(f"ceiling C: asyncpg COPY of {ceilings.BATCH} rows per commit", flush=True)
        async with postgres.fresh_database(server_url) as url:
            results.ceiling_c = await ceilings.storage_batched(url, rows, o.seconds, o.warmup)
        _say("ceiling C", results.ceiling_c)
    if "ceiling-b" in wanted:
        print("ceiling B: bare aiohttp handler", flush=True)
        results.ceiling_b = await asyncio.to_thread(
            ceilings.http, post, o.connections, o.seconds, o.warmup
        )
        _say("ceiling B", results.ceiling_b)
    if "peer" in wanted:
        if peer.available():
            print(f"peer: eventsourcing {peer.version()}, one event per transaction", flush=True)
            async with postgres.fresh_database(server_url, migrated=False) as url:
                results.peer = await asyncio.to_thread(
                    peer.append_rate, url, rows, o.seconds, o.warmup
                )
            _say("peer", results.peer)
            print(f"peer, best mode: {peer.BEST_PER_SAVE} events per save", flush=True)
            async with postgres.fresh_database(server_url, migrated=False) as url:
                results.peer_best = await asyncio.to_thread(
                    peer.append_rate, url, rows, o.seconds, o.warmup, peer.BEST_PER_SAVE
                )
            _say("peer, best mode", results.peer_best)
        else:
            print(peer.SKIPPED, flush=True)
            results.notes.append(peer.SKIPPED)
    for name, workers, servers in report.INGEST_SETUPS:
        if name in wanted:
            results.ingest[name] = await _ingest(
                o, server_url, (workers, servers), lines, post, workdir
            )
    if wanted & {"replay", "query"}:
        await _replay_and_query(o, server_url, results, workdir)


async def _ingest(  # noqa: PLR0913, PLR0917 - private, one call site
    o: Options,
    server_url: str,
    setup: tuple[int, int],
    lines: Path,
    post: Path,
    workdir: Path,
) -> IngestSummary:
    workers, servers = setup
    runs = []
    for number in range(1, o.runs + 1):
        print(
            f"ingest, {servers} server(s) of {workers} worker(s), run {number}/{o.runs}",
            flush=True,
        )
        ran = await ingest_run(
            server_url,
            workers,
            servers=servers,
            bodies=lines,
            script=post,
            seconds=o.seconds,
            warmup=o.warmup,
            workdir=workdir,
            connections=o.connections,
        )
        _say("closed loop", ran.closed)
        print(f"  the log grew by {ran.logged:,} rows ({ran.logged_rate:,.0f}/s)")
        _say("open loop at half", ran.half)
        runs.append(ran)
    return IngestSummary.of(runs)


async def _replay_and_query(
    o: Options, server_url: str, results: report.Results, workdir: Path
) -> None:
    wanted = set(o.only)
    count = o.replay_events if "replay" in wanted else min(o.replay_events, QUERY_ONLY_EVENTS)
    print(f"log: writing {count:,} fleet bodies for `tracker import`", flush=True)
    log = workload.fleet(count, f"r{secrets.token_hex(2)}-")
    lines = workload.write_lines(workdir / "log.jsonl", log)
    async with postgres.fresh_database(server_url) as url:
        if "replay" in wanted:
            print(f"replay: {count:,} events, {o.runs} run(s)", flush=True)
            results.replay = await replay_rate.measure(url, lines, count, o.runs)
            results.swap = await _swap(o, url, workdir)
        else:
            await replay_rate.load(url, lines, count)
        if "query" in wanted:
            devices = workload.device_ids(lines, QUERY_DEVICES)
            print(f"query: GET /v1/devices/{{id}} over {len(devices):,} devices", flush=True)
            results.query = await query.device_reads(url, devices, o.seconds, o.warmup, workdir)
            _say("device GET", results.query)


async def _swap(o: Options, url: str, workdir: Path) -> swap.Swaps:
    """`tracker replay` again, `o.runs` times, while 32 clients post (new devices' bodies)."""
    print(f"swap pause: {o.runs} replay(s) while {swap.CLIENTS} clients post", flush=True)
    bodies = list(
        workload.fleet(SWAP_BODIES // (10 if o.smoke else 1), f"s{secrets.token_hex(2)}-")
    )
    swaps = await swap.under_load(url, workdir / "tracker-swap.log", o.runs, bodies)
    print(
        f"  swap pause {swaps.summary()}; clients while replaying: {swaps.replaying.summary()}"
        f"{f', {swaps.failed:,} POSTs failed' if swaps.failed else ''}; "
        f"no replay: {swaps.quiet.summary()}",
        flush=True,
    )
    return swaps


async def main(o: Options) -> None:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp,
        postgres.server() as (server_url, source),
    ):
        procfs.watch_postgres(await postgres.postmaster(server_url))
        results = report.Results(await facts(server_url, source), o.summary())
        print(report.header(results.facts, results.options) + "\n", flush=True)
        await run(o, server_url, results, Path(tmp))
    results.seconds = time.monotonic() - started
    rows, notes = report.lines(results), report.warnings(results)
    print("\n" + report.header(results.facts, results.options) + "\n")
    print(report.markdown(rows) + "\n")
    print("".join(f"- note: {note}\n" for note in notes))
    print("Load generators and CPU (% of one core; server and PostgreSQL: their process trees,")
    print("exited children included; machine: % of all cores busy):\n")
    print(report.cpu_table(report.loads(results)) + "\n")
    report.write_json(o.json, results, rows, notes)
    print(f"figures: {o.json}; the whole run took {results.seconds / 60:.1f} min")


if __name__ == "__main__":
    try:
        if sys.argv[1:2] == ["scale"]:  # `python -m bench scale ...`: the fleet-scale benchmark
            from bench.scale import main as scale  # only that command needs it

            sys.exit(scale.main(sys.argv[2:]))
        if sys.argv[1:2] == ["dashboard"]:  # `python -m bench dashboard ...`: pages at scale
            from bench import dashboard

            sys.exit(dashboard.main(sys.argv[2:]))
        asyncio.run(main(options()))
    except KeyboardInterrupt:
        sys.exit(130)
