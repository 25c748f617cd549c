"""`python -m bench`: the tracker's ingest, replay and reads, each with its ratio to a baseline
measured in the same run, on the same PostgreSQL (bench/README.md says how each is taken).

Every run measures ceiling A beside the tracker, so ingest always has a ratio to storage on this
machine, and replay its sequential read; `--baselines` adds the one-off comparisons (the disk,
ceiling C, the bare HTTP server, the eventsourcing peer), and every table shows its ratio to
each baseline measured.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench import amqp, baselines, ingest, postgres, processes, replay, report
from bench.ingest import Ingest
from bench.load import Load, wrk_script
from bench.replay import Replay, Swaps
from testkit import fleet
from tracker.domain.delivery import NewEvent, decode

TRACKER = ("ceiling-a", "ingest", "ingest-workers2", "ingest-servers2", "amqp", "replay", "query")
BASELINES = ("disk", "ceiling-c", "ceiling-b", "peer")  # with --baselines
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
    amqp_messages: tuple[int, int]  # the two backlogs the consumer drains


def options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the tracker against baselines taken in the same run.",
        epilog="`python -m bench scale --help`: the fleet-scale benchmark; "
        "`python -m bench dashboard --help`: the dashboard's pages at fleet size.",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny runs (with --baselines: every path; CI)"
    )
    parser.add_argument("--baselines", action="store_true", help=f"also {', '.join(BASELINES)}")
    parser.add_argument("--duration", type=int, help="seconds per load run (20; smoke 2)")
    parser.add_argument("--replay-events", type=int, help="log size (1,000,000; smoke 5,000)")
    parser.add_argument("--runs", type=int, help="ingest and replay repeats (3; smoke 1)")
    parser.add_argument("--connections", type=int, default=ingest.CONNECTIONS, help="ingest (64)")
    parser.add_argument(
        "--amqp-messages", type=int, help="the large AMQP backlog (1,000,000; smoke 4,000)"
    )
    latest = processes.ROOT / "bench/results/latest.json"
    parser.add_argument("--json", type=Path, default=latest, help="raw figures (bench/results/)")
    parser.add_argument("--only", help=f"a subset of: {','.join(TRACKER + BASELINES)}")
    args = parser.parse_args(argv)
    only = tuple(args.only.split(",")) if args.only else TRACKER
    if unknown := set(only) - set(TRACKER + BASELINES):
        parser.error(f"unknown measurement(s) {sorted(unknown)}; choose from {TRACKER + BASELINES}")
    seconds = args.duration or (2 if args.smoke else 20)
    small = amqp.SMOKE_SMALL if args.smoke else amqp.SMALL
    large = args.amqp_messages or (amqp.SMOKE_LARGE if args.smoke else amqp.LARGE)
    if large <= small:
        parser.error(f"--amqp-messages must be over the small backlog ({small:,})")
    return Options(
        seconds=seconds,
        warmup=1 if args.smoke or seconds < 10 else 2,
        replay_events=args.replay_events or (5_000 if args.smoke else 1_000_000),
        runs=args.runs or (1 if args.smoke else 3),
        json=args.json,
        only=only + (BASELINES if args.baselines else ()),
        smoke=args.smoke,
        connections=args.connections,
        amqp_messages=(small, large),
    )


@dataclass
class Results:
    facts: dict[str, Any]
    options: Options
    baselines: dict[str, Load] = field(default_factory=dict)  # by name, as in `versus`
    fsync: tuple[str, float | None] | None = None  # pg_test_fsync: (method, ops/s)
    ingest: list[Ingest] = field(default_factory=list)
    amqp: amqp.Amqp | None = None
    replay: Replay | None = None
    swap: Swaps | None = None
    query: Load | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what a reader must know (e.g. a skip)

    def versus(self) -> list[tuple[str, Load, float | None]]:
        """Each baseline measured, with the least ratio of ingest to it (None: not judged; the
        batched ceiling is the physical one, the peer is judged in its best mode)."""
        peer = f"peer (eventsourcing {self.facts['eventsourcing']})"
        named = [
            ("ceiling A (storage, one INSERT a commit)", "ceiling-a", 1.5),
            ("ceiling C (storage, COPY batches)", "ceiling-c", None),
            ("ceiling B (HTTP)", "ceiling-b", 0.6),
            (f"{peer}, 1 event a save", "peer", None),
            (f"{peer}, best mode", "peer-best", 10.0),
        ]
        return [(n, self.baselines[k], least) for n, k, least in named if k in self.baselines]

    def loads(self) -> list[tuple[str, Load]]:
        """Every load run that counted, named, for the CPU table."""
        named = [(name, load) for name, load, _ in self.versus()]
        for s in self.ingest:
            for number, r in enumerate(s.runs, 1):
                named += [
                    (f"{s.name} run {number}", r.closed),
                    (f"{s.name} run {number}, half rate", r.half),
                ]
        named += self.amqp.loads() if self.amqp else []
        return named + ([("device GET", self.query)] if self.query else [])

    def lines(self) -> list[report.Line]:
        out = ingest.lines(self.ingest, self.versus())
        out += self.amqp.lines() if self.amqp else []
        if self.fsync is not None:
            method, ops = self.fsync
            said = f"{ops:,.0f} syncs/s" if ops else "not measured (no pg_test_fsync here)"
            out.append(report.Line(f"disk: pg_test_fsync, {method}, one 8 kB write", said))
        if not self.ingest:  # nothing to hold them against: the baselines on their own
            out += [report.Line(n, f"{x.rate:,.0f}/s; {x.latency()}") for n, x, _ in self.versus()]
        out += replay.lines(self.replay) if self.replay else []
        out += self.swap.lines() if self.swap else []
        return out + ([ingest.device_line(self.query)] if self.query else [])


async def measure(o: Options, server_url: str, results: Results, workdir: Path) -> None:
    wanted = set(o.only)
    # Enough distinct bodies that runs rarely wrap around (a repeat is a platform retry anyway).
    count = min(max(o.seconds * 10_000, 20_000), 300_000)
    bodies = list(fleet.deliveries(count, f"b{secrets.token_hex(2)}-"))
    lines = fleet.write_lines(workdir / "bodies.jsonl", bodies)
    post = wrk_script(
        workdir / "post.lua", "post", lines, "/v1/notifications", ingest.INGEST_HEADERS
    )
    print(f"workload: {len(bodies):,} fleet bodies ({lines})", flush=True)
    await _baselines(o, server_url, results, [decode(b) for b in bodies], post)
    for name, workers, servers in ingest.SETUPS:
        if name in wanted:
            runs = []
            for number in range(1, o.runs + 1):
                print(f"{name}, {servers} server(s) of {workers} worker(s), run {number}/{o.runs}")
                ran = await ingest.run(
                    server_url,
                    (workers, servers),
                    bodies=lines,
                    script=post,
                    timing=(o.seconds, o.warmup),
                    workdir=workdir,
                    connections=o.connections,
                )
                print(f"  closed loop: {ran.closed.said()}")
                print(f"  the log grew by {ran.logged:,} rows ({ran.logged_rate:,.0f}/s)")
                print(f"  open loop at half: {ran.half.said()}", flush=True)
                runs.append(ran)
            results.ingest.append(Ingest(name, workers, servers, runs))
    if "amqp" in wanted:
        await _amqp(o, server_url, results, workdir, post)
    if wanted & {"replay", "query"}:
        await _replay_and_query(o, server_url, results, workdir)


async def _baselines(
    o: Options, server_url: str, results: Results, events: list[NewEvent], post: Path
) -> None:
    wanted, timing = set(o.only), (o.seconds, o.warmup)
    if "disk" in wanted:
        method = str(results.facts["postgres"].get("wal_sync_method", "fdatasync"))
        results.fsync = (method, await asyncio.to_thread(baselines.fsyncs_per_second, method))
        print(f"disk: pg_test_fsync {method}: {results.fsync[1] or 'not measured'} ops/s")
    measured = {}
    if "ceiling-a" in wanted:
        async with postgres.fresh_database(server_url) as url:
            measured["ceiling-a"] = await baselines.storage(url, events, timing)
    if "ceiling-c" in wanted:
        async with postgres.fresh_database(server_url) as url:
            measured["ceiling-c"] = await baselines.storage_batched(url, events, timing)
    if "ceiling-b" in wanted:
        measured["ceiling-b"] = await asyncio.to_thread(baselines.http, post, o.connections, timing)
    if "peer" in wanted and results.facts["eventsourcing"] is None:
        results.notes.append(baselines.PEER_SKIPPED)
    elif "peer" in wanted:
        for name, per_save in (("peer", 1), ("peer-best", baselines.BEST_PER_SAVE)):
            async with postgres.fresh_database(server_url, migrated=False) as url:
                measured[name] = await baselines.peer(url, events, timing, per_save)
    for name, load in measured.items():
        print(f"{name}: {load.said()}", flush=True)
    results.baselines |= measured


async def _amqp(o: Options, server_url: str, results: Results, workdir: Path, post: Path) -> None:
    """Two backlogs drained over AMQP, beside the HTTP ingest of this run (or a wrk run of the
    same bodies, when the ingest row did not run)."""
    if (why := amqp.unavailable()) is not None:
        print(why, flush=True)
        results.notes.append(why)
        return
    small, large = o.amqp_messages
    print(f"amqp: writing {large:,} fleet bodies for the backlogs", flush=True)
    backlog = fleet.write_lines(
        workdir / "backlog.jsonl", fleet.deliveries(large, f"q{secrets.token_hex(2)}-")
    )
    chained = amqp.chained(backlog)
    one = next((s for s in results.ingest if s.name == "ingest"), None)
    if one is not None:
        middle = sorted(one.runs, key=lambda r: r.closed.rate)[len(one.runs) // 2].closed
        http, source = dataclasses.replace(middle, rate=one.rate), "the ingest row"
    else:
        print("amqp: the HTTP ingest beside it (wrk, one `tracker serve`)", flush=True)
        timing = (o.seconds, o.warmup)
        http = await amqp.http_ingest(server_url, post, timing, workdir, o.connections)
        source = amqp.HTTP_HERE
        print(f"  {http.said()}", flush=True)
    drains = []
    for count in (small, large):
        print(f"amqp: {count:,} messages queued, drained by one `tracker serve`", flush=True)
        drained = await amqp.drain(server_url, backlog, count, workdir)
        print(f"  {drained.said()}; RSS peak {drained.rss_peak_mb:.0f} MB", flush=True)
        drains.append(drained)
    results.amqp = amqp.Amqp(drains[0], drains[1], http, source, o.smoke, chained)


async def _replay_and_query(o: Options, server_url: str, results: Results, workdir: Path) -> None:
    wanted = set(o.only)
    count = o.replay_events if "replay" in wanted else min(o.replay_events, QUERY_ONLY_EVENTS)
    print(f"log: writing {count:,} fleet bodies for `tracker import`", flush=True)
    log = fleet.write_lines(
        workdir / "log.jsonl", fleet.deliveries(count, f"r{secrets.token_hex(2)}-")
    )
    async with postgres.fresh_database(server_url) as url:
        if "replay" in wanted:
            print(f"replay: {count:,} events, {o.runs} run(s)", flush=True)
            results.replay = await replay.measure(url, log, count, o.runs)
            print(f"swap pause: {o.runs} replay(s) while {replay.CLIENTS} clients post")
            new = fleet.deliveries(
                SWAP_BODIES // (10 if o.smoke else 1), f"s{secrets.token_hex(2)}-"
            )
            swaps = await replay.under_load(url, workdir / "tracker-swap.log", o.runs, list(new))
            failed = f", {swaps.failed:,} POSTs failed" if swaps.failed else ""
            print(
                f"  swap pause {swaps.summary()}; clients while replaying: "
                f"{swaps.replaying.summary()}{failed}; no replay: {swaps.quiet.summary()}",
                flush=True,
            )
            results.swap = swaps
        else:
            await replay.load(url, log, count)
        if "query" in wanted:
            devices = _device_ids(log, QUERY_DEVICES)
            print(f"query: GET /v1/devices/{{id}} over {len(devices):,} devices", flush=True)
            results.query = await ingest.device_reads(url, devices, (o.seconds, o.warmup), workdir)
            print(f"  device GET: {results.query.said()}", flush=True)


def _device_ids(lines: Path, limit: int) -> list[str]:
    """Up to `limit` distinct device ids from a file of bodies, in order of first appearance."""
    seen: dict[str, None] = {}
    with lines.open("rb") as source:
        for line in source:
            if len(seen) >= limit:
                break
            if "deviceId" in (document := orjson.loads(line)):
                seen[document["deviceId"]] = None
    return list(seen)


async def run(o: Options) -> None:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="tracker-bench-") as tmp,
        postgres.server() as (pg, source),
    ):
        processes.watch_postgres(await postgres.postmaster(pg))
        known = await report.facts(pg, source, eventsourcing=baselines.peer_version())
        results = Results(known, o)
        print(_header(results) + "\n", flush=True)
        await measure(o, pg, results, Path(tmp))
    results.seconds = time.monotonic() - started
    lines = results.lines()
    notes = results.notes + report.notes(known["postgres"], results.loads())
    notes += ingest.log_notes(results.ingest)
    notes += results.amqp.notes() if results.amqp else []
    print(f"\n{_header(results)}\n\n{report.markdown(report.LINE_HEADER, lines)}\n")
    print("".join(f"- note: {note}\n" for note in notes))
    print("Load generators and CPU (% of one core; server and PostgreSQL: their process trees,")
    print("exited children included; machine: % of all cores busy):\n")
    print(report.cpu_table(results.loads()) + "\n")
    report.write_json(o.json, report.plain(results) | {"notes": notes, "table": lines})
    print(f"figures: {o.json}; the whole run took {results.seconds / 60:.1f} min")


def _header(r: Results) -> str:
    f, o = r.facts, r.options
    software = f"tracker {f['tracker_commit']}; {f['wrk']}"
    if set(o.only) & {"peer", "ceiling-b"}:
        software += f"; peer eventsourcing {f['eventsourcing'] or 'not installed'}"
        software += f"; bare HTTP server on {f['bare_http_loop']}"
    knobs = f"smoke {o.smoke}, duration {o.seconds} s, warm-up {o.warmup} s, runs {o.runs}, "
    knobs += f"connections {o.connections}, replay events {o.replay_events:,}, "
    knobs += f"amqp backlogs {o.amqp_messages[0]:,} and {o.amqp_messages[1]:,}"
    return report.header(
        "tracker benchmark", f, software, f"options: {knobs}, only {','.join(o.only)}"
    )


def main(argv: list[str]) -> int:
    asyncio.run(run(options(argv)))
    return 0
