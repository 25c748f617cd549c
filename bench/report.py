"""The markdown tables and the JSON record of one benchmark run.

Every ratio divides two figures measured in the same run, on the same database server; a target
is met or not, or n/a when the run was too small for it to mean anything (e.g. --smoke).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from bench.ingest import IngestSummary
from bench.load import Load, median
from bench.replay_rate import Replay
from bench.swap import Swaps

FULL_REPLAY = 1_000_000  # the replay targets are stated over a log this long
# The ingest measurements: (name, workers per server, servers). The first is the default
# deployment, judged against the baselines; the others against it.
INGEST_SETUPS = (("ingest", 1, 1), ("ingest-workers2", 2, 1), ("ingest-servers2", 1, 2))
SCALE_OUT = 1.3  # the least gain of two processes over one (issue 14)
BUSY = 90.0  # % of the machine busy at the maximum rate: CPU, not a serial section, limits


@dataclass
class Results:
    facts: dict[str, Any]
    options: dict[str, Any]
    ceiling_a: Load | None = None
    ceiling_b: Load | None = None
    peer: Load | None = None  # one event per save
    peer_best: Load | None = None  # several events per save (peer.BEST_PER_SAVE)
    ceiling_c: Load | None = None  # COPY batches, one commit each
    fsync: tuple[str, float | None] | None = None  # pg_test_fsync: (method, ops/s)
    ingest: dict[str, IngestSummary] = field(default_factory=dict)  # by INGEST_SETUPS name
    replay: Replay | None = None
    swap: Swaps | None = None  # replays while clients post
    query: Load | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what a reader must know (e.g. a skip)


@dataclass(frozen=True, slots=True)
class Line:
    measurement: str
    figure: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"


def _met(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _rate(load: Load) -> str:
    errors = f", {load.errors:,} errors" if load.errors else ""
    return f"{load.rate:,.0f}/s{errors}"


def header(facts: dict[str, Any], options: dict[str, Any]) -> str:
    pg = facts["postgres"]
    settings = ", ".join(f"{k} = {v}" for k, v in pg.items() if k != "server_version")
    return "\n".join(
        [
            f"## tracker benchmark, {facts['started']}",
            "",
            f"- machine: {facts['cores']} cores, {facts['platform']}, Python {facts['python']}",
            f"- PostgreSQL {pg['server_version']} ({facts['database']}): {settings}",
            (
                f"- tracker {facts['tracker_commit']}; peer eventsourcing "
                f"{facts['eventsourcing'] or 'not installed'}; {facts['wrk']}; "
                f"bare HTTP server on {facts['bare_http_loop']}"
            ),
            f"- options: {', '.join(f'{k} {v}' for k, v in options.items())}",
        ]
    )


def lines(r: Results) -> list[Line]:
    out: list[Line] = []
    one = r.ingest.get("ingest")
    if one:
        out += _ingest_lines(one, r)
    for name in ("ingest-workers2", "ingest-servers2"):
        if more := r.ingest.get(name):
            out += _scale_out_lines(more, one)
    if r.fsync is not None:
        method, ops = r.fsync
        said = f"{ops:,.0f} syncs/s" if ops else "not measured (no pg_test_fsync here)"
        out.append(Line(f"disk: pg_test_fsync, {method}, one 8 kB write", said))
    if not r.ingest:  # nothing to hold them against: show the baselines on their own
        named = [("ceiling A (storage)", r.ceiling_a), ("ceiling B (HTTP)", r.ceiling_b)]
        named += [("ceiling C (storage, COPY batches)", r.ceiling_c)]
        named.append((f"peer (eventsourcing {r.facts['eventsourcing']})", r.peer))
        named.append((f"peer (eventsourcing {r.facts['eventsourcing']}), best mode", r.peer_best))
        out += [Line(name, f"{_rate(x)}; {x.latency()}") for name, x in named if x]
    if r.replay:
        out += _replay_lines(r.replay)
    if r.swap:
        out += swap_lines(r.swap)
    if r.query:
        q = r.query
        figure = f"p99 {q.p99_ms:.1f} ms (p50 {q.p50_ms:.1f} ms, {_rate(q)})"
        out.append(
            Line(
                f"device GET, {q.connections} conns",
                figure,
                target="p99 ≤ 10 ms",
                met=_met(q.p99_ms <= 10 and q.errors == 0),
            )
        )
    return out


def _setup(s: IngestSummary) -> str:
    if s.servers > 1:
        return f"ingest, {s.servers} `tracker serve` behind one wrk"
    return "ingest --workers 2" if s.workers > 1 else "ingest"


def _figure(s: IngestSummary) -> str:
    return (
        f"{s.rate:,.0f} events/s (log {s.logged_rate:,.0f}/s); "
        f"p50 {s.p50_ms:.1f} ms, p99 {s.p99_ms:.1f} ms"
    )


def _busy(s: IngestSummary) -> Line:
    """How busy the machine was at the maximum rate (the median over the runs)."""
    busy = median([run.closed.cpu.machine_busy_percent for run in s.runs])
    server = median([run.closed.cpu.server_percent or 0.0 for run in s.runs])
    pg = median([run.closed.cpu.postgres_percent or 0.0 for run in s.runs])
    return Line(
        f"{_setup(s)}: machine busy at the max rate",
        f"{busy:.0f}% of all cores (server {server:.0f}%, PostgreSQL {pg:.0f}% of a core)",
        target=f"≥ {BUSY:.0f}%",
        met=_met(busy >= BUSY),
    )


def _scale_out_lines(s: IngestSummary, one: IngestSummary | None) -> list[Line]:
    """A second process, as a worker or as another server: judged against one process."""
    out = []
    if one is not None:
        ratio = s.rate / one.rate if one.rate else float("inf")
        out.append(
            Line(
                f"{_setup(s)} vs ingest (one process)",
                _figure(s),
                f"{one.rate:,.0f}/s",
                f"{ratio:.2f}",
                f"≥ {SCALE_OUT:g}",
                _met(ratio >= SCALE_OUT),
            )
        )
    else:
        out.append(Line(_setup(s), _figure(s)))
    out.append(_busy(s))
    out.append(_half(s))
    return out


def _half(s: IngestSummary) -> Line:
    half = f"p99 {s.half_p99_ms:.1f} ms (p50 {s.half_p50_ms:.1f} ms) at {s.half_rate:,.0f}/s"
    return Line(
        f"{_setup(s)}, open loop at half the max rate",
        half,
        target="p99 ≤ 25 ms",
        met=_met(s.half_p99_ms <= 25),
    )


def _ingest_lines(s: IngestSummary, r: Results) -> list[Line]:
    name, figure = _setup(s), _figure(s)
    out = []
    peer_name = f"peer (eventsourcing {r.facts['eventsourcing']})"
    # A target of None: shown for the comparison, not judged (the batched ceiling is the
    # physical one: nothing durable goes past it; the peer is judged in its best mode).
    versus: list[tuple[str, Load | None, float | None]] = [
        ("ceiling A (storage, one INSERT a commit)", r.ceiling_a, 1.5),
        ("ceiling C (storage, COPY batches)", r.ceiling_c, None),
        ("ceiling B (HTTP)", r.ceiling_b, 0.6),
        (f"{peer_name}, 1 event a save", r.peer, None),
        (f"{peer_name}, best mode", r.peer_best, 10.0),
    ]
    for label, baseline, target in versus:
        if baseline is None:
            continue
        ratio = s.rate / baseline.rate if baseline.rate else float("inf")
        out.append(
            Line(
                f"{name} vs {label}",
                figure,
                f"{baseline.rate:,.0f}/s; p50 {baseline.p50_ms:.1f}, p99 {baseline.p99_ms:.1f} ms",
                f"{ratio:.2f}",
                "(info)" if target is None else f"≥ {target:g}",
                "-" if target is None else _met(ratio >= target),
            )
        )
    if not out:
        out.append(Line(name, figure))
    out.append(_busy(s))
    out.append(_half(s))
    return out


def _replay_lines(p: Replay) -> list[Line]:
    full = p.events >= FULL_REPLAY
    small = f"n/a ({p.events:,} < 1M events)"
    figure = f"{p.rate:,.0f} events/s over {p.events:,} ({_wall(p)})"
    ratio = p.rate / p.baseline if p.baseline else float("nan")
    largest = max(r.largest_process_mb for r in p.runs)
    return [
        Line(
            "replay",
            figure,
            target="≥ 100,000 events/s",
            met=_met(p.rate >= 100_000) if full else small,
        ),
        Line(
            "replay vs sequential read",
            figure,
            f"{p.baseline:,.0f} events/s (asyncpg cursor)",
            f"{ratio:.2f}",
            "≥ 0.33 (within 3x)",
            _met(ratio >= 1 / 3),
        ),
        Line(
            "replay peak RSS (its process tree)",
            f"{p.peak_rss_mb:,.0f} MB (largest process {largest:,.0f} MB)",
            target="≤ 300 MB",
            met=_met(p.peak_rss_mb <= 300) if full else small,
        ),
    ]


def swap_lines(s: Swaps) -> list[Line]:
    """The swap pause (as `tracker replay` reports it), judged on its median over the runs, and
    what the posting clients saw meanwhile against what they saw with no replay running."""
    pauses = s.pauses_ms
    ratio = s.replaying.p99_ms / s.quiet.p99_ms if s.quiet.p99_ms else float("nan")
    failed = f"; {s.failed:,} POSTs failed" if s.failed else ""
    return [
        Line(
            f"swap pause while {s.clients} clients post",
            f"{s.summary()} over {len(s.runs)} replay(s)",
            target="median ≤ 100 ms",
            met=_met(s.median_ms <= 100) if pauses else "n/a (not reported)",
        ),
        Line(
            f"{s.clients} clients' POSTs while replaying",
            f"{s.replaying.summary()}{failed}",
            f"no replay running: {s.quiet.summary()}",
            f"{ratio:.2f} (p99)",
        ),
    ]


def _wall(p: Replay) -> str:
    walls = ", ".join(f"{r.seconds:.1f}" for r in p.runs)
    reported = [r.reported_rate for r in p.runs if r.reported_rate]
    own = f"; it reports {reported[len(reported) // 2]:,.0f}/s" if reported else ""
    return f"wall {walls} s{own}"


SATURATED = 90.0  # % of a core per generator process, or of the machine


def warnings(r: Results) -> list[str]:
    """Conditions under which a figure above means less than it seems."""
    pg = r.facts["postgres"]
    out = list(r.notes)
    if pg["synchronous_commit"] != "on" or pg["fsync"] != "on":
        out.append("synchronous_commit or fsync is off: the targets assume both on")
    if pg.get("autovacuum", "on") != "on":
        out.append(
            "autovacuum is off on this server: every update leaves a dead row and index "
            "entries behind, so ingest slows as a run goes on"
        )
    for name, x in loads(r):
        processes = 2 if x.generator.startswith("open loop") else 1
        if x.generator_cpu_percent > SATURATED * processes:
            out.append(f"{name}: the load generator was near its CPU limit; the rate may be its")
        if x.errors:
            out.append(f"{name}: {x.errors:,} requests failed or were not answered 2xx")
    busy = [name for name, x in loads(r) if x.cpu.machine_busy_percent >= SATURATED]
    if busy:
        out.append(
            f"the machine's CPUs were ≥ {SATURATED:.0f}% busy during: {', '.join(busy)} "
            "(generator, server and PostgreSQL share them; see the CPU table)"
        )
    for name, s in r.ingest.items():
        for number, run in enumerate(s.runs, 1):
            answered, logged = run.closed.ok, run.logged
            if abs(logged - answered) > max(0.01 * answered, 2 * run.closed.connections):
                out.append(
                    f"{name} run {number}: wrk counted {answered:,} 200s but the "
                    f"log grew by {logged:,} rows"
                )
    return out


def markdown(rows: list[Line]) -> str:
    out = [
        "| measurement | figure | baseline (same run) | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {x.measurement} | {x.figure} | {x.baseline} | {x.ratio} | {x.target} | {x.met} |"
        for x in rows
    ]
    return "\n".join(out)


def loads(r: Results) -> list[tuple[str, Load]]:
    """Every load run that counted, named, for the load-generator table."""
    named = [("ceiling A (storage)", r.ceiling_a), ("ceiling B (HTTP)", r.ceiling_b)]
    named += [("ceiling C (COPY batches)", r.ceiling_c)]
    named += [("peer", r.peer), ("peer, best mode", r.peer_best)]
    for name, s in r.ingest.items():
        for number, run in enumerate(s.runs, 1):
            named += [(f"{name} run {number}", run.closed)]
            named += [(f"{name} run {number}, half rate", run.half)]
    named += [("device GET", r.query)]
    return [(name, load) for name, load in named if load is not None]


def cpu_table(named: list[tuple[str, Load]]) -> str:
    """CPU in % of one core; 'machine' in % of all cores."""
    out = [
        (
            "| run | generator | conns | rate | p50 / p99 ms | generator CPU | server CPU "
            "| PostgreSQL CPU | machine busy |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, x in named:
        server, pg = (
            "-" if share is None else f"{share:.0f}%"
            for share in (x.cpu.server_percent, x.cpu.postgres_percent)
        )
        out.append(
            f"| {name} | {x.generator} | {x.connections} | {_rate(x)} "
            f"| {x.p50_ms:.1f} / {x.p99_ms:.1f} | {x.generator_cpu_percent:.0f}% | {server} "
            f"| {pg} | {x.cpu.machine_busy_percent:.0f}% |"
        )
    return "\n".join(out)


def write_json(path: Path, r: Results, rows: list[Line], notes: list[str]) -> None:
    document = plain(r)
    document["notes"] = notes
    if r.replay:
        replay = r.replay
        document["replay"] |= {
            "rate": replay.rate,
            "baseline": replay.baseline,
            "peak_rss_mb": replay.peak_rss_mb,
        }
    if r.swap:
        document["swap"] |= {"median_ms": r.swap.median_ms, "max_ms": r.swap.max_ms}
    document["table"] = [asdict(x) for x in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


def plain(value: Any) -> Any:  # noqa: ANN401 - any result, as JSON-ready values
    if is_dataclass(value) and not isinstance(value, type):
        return {k: plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
