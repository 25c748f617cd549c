"""The scale benchmark's table: each measurement at N/10 and at N side by side, its target, the
growth from N/10 to N, and whether the target is met (judged at N, and for list pages also on
that growth; targets stated for 1M devices show n/a below it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from bench.processes import Ran
from bench.report import met, ms, no, times
from bench.scale.reads import Timing
from bench.scale.size import BYTES_TARGET, REFERENCE_BYTES_PER_EVENT, Reference, Size

HEADER = ("measurement", "target", "at N/10", "at N", "N vs N/10", "met?")
LIST_P50, LIST_P99, GROWTH, ROLLUP_P50 = 15.0, 50.0, 1.5, 5.0
LIST_TARGET = f"p50 ≤ {LIST_P50:g}, p99 ≤ {LIST_P99:g} ms; ≤ {GROWTH:g}x N/10 (p50)"
FULL = 1_000_000  # devices: the targets stated over the full fleet are judged from here


class Row(NamedTuple):
    measurement: str
    target: str
    small: str
    large: str
    growth: str
    met: str


def rows(small: Size, large: Size, ref: Reference | None) -> list[Row]:
    def loaded(s: Size) -> str:
        if not (x := s.loaded):
            return "failed"
        return (
            f"{s.events:,} events, {s.devices:,} devices, {s.tasks:,} tasks; generated at "
            f"{x.generation_rate:,.0f}/s, loaded at {x.rate:,.0f}/s ({x.seconds:,.1f} s)"
        )

    out = [Row("log (COPY loader, no HTTP)", "-", loaded(small), loaded(large), "-", "-")]
    labels = list(dict.fromkeys(t.label for s in (large, small) for t in s.reads))
    kinds = {t.label: t.kind for s in (small, large) for t in s.reads}
    both = [{t.label: t for t in s.reads} for s in (small, large)]
    for label in labels:  # matched by label: one size may have failed before its reads
        gone = Timing(label, kinds[label], "not measured")
        out.append(_read(both[0].get(label, gone), both[1].get(label, gone)))
    return out + _replay(small, large) + _commands(small, large) + _storage(small, large, ref)


def _read(a: Timing, b: Timing) -> Row:
    def cell(t: Timing) -> str:
        if t.status != "ok" or t.p50_ms is None or t.p99_ms is None:
            return t.status
        return f"{ms(t.p50_ms)} / {ms(t.p99_ms)} ms{f' ({t.note})' if t.note else ''}"

    growth = times(b.p50_ms, a.p50_ms)
    target = {"operation": f"p50 ≤ {ROLLUP_P50:g} ms at both sizes", "list": LIST_TARGET}
    if b.status != "ok" or b.p50_ms is None or b.p99_ms is None:
        judged = "-" if b.status.startswith("n/a") else no(b.status)
    elif b.kind == "operation":
        worst = max(x for x in (a.p50_ms, b.p50_ms) if x is not None)
        judged = met(worst <= ROLLUP_P50, f"p50 {ms(worst)} ms")
    elif b.kind == "list":
        why = [f"p50 {ms(b.p50_ms)} ms"] if b.p50_ms > LIST_P50 else []
        why += [f"p99 {ms(b.p99_ms)} ms"] if b.p99_ms > LIST_P99 else []
        why += [f"grew {growth}"] if a.p50_ms and b.p50_ms / a.p50_ms > GROWTH else []
        judged = met(not why, ", ".join(why))
    else:
        judged = "-"
    return Row(b.label, target.get(b.kind, "-"), cell(a), cell(b), growth, judged)


def _replay(small: Size, large: Size) -> list[Row]:
    def rate(s: Size) -> str:
        median = f"({s.replay_seconds:.1f} s, median of {len(s.replays)})"
        return f"{s.replay_rate:,.0f} events/s {median}" if s.replays else "failed"

    def posts(s: Size) -> str:
        if not (x := s.swaps):
            return "failed"
        failed = f"; {x.failed:,} failed" if x.failed else ""
        busy, quiet = f"p99 {ms(x.replaying.p99_ms)}", f"(no replay: p99 {ms(x.quiet.p99_ms)})"
        return f"{busy}, max {x.replaying.max_ms:,.0f} ms {quiet}{failed}"

    def pause(s: Size) -> str:
        return s.swaps.summary() if s.swaps else "failed"

    peaks = [s.replay_peak_mb for s in (small, large) if s.replays]
    pauses = [s.swaps.median_ms for s in (small, large) if s.swaps and s.swaps.pauses_ms]
    judged = met(large.replay_rate >= 100_000) if large.devices >= FULL else "n/a (N < 1M)"
    return [
        Row(
            "replay (`tracker replay`, its own process)",
            "≥ 100,000 events/s at 1M devices",
            rate(small),
            rate(large),
            times(large.replay_rate, small.replay_rate),
            judged if large.replays else no("failed"),
        ),
        Row(
            "replay peak RSS (its process tree)",
            "≤ 300 MB at both sizes",
            f"{small.replay_peak_mb:,.0f} MB",
            f"{large.replay_peak_mb:,.0f} MB",
            times(large.replay_peak_mb, small.replay_peak_mb),
            met(len(peaks) == 2 and max(peaks) <= 300),
        ),
        Row(
            "swap pause while 32 clients post",
            "median ≤ 100 ms at both sizes",
            pause(small),
            pause(large),
            "-",
            met(len(pauses) == 2 and max(pauses) <= 100),
        ),
        Row("32 clients' POSTs while replaying", "-", posts(small), posts(large), "-", "-"),
    ]


def _commands(small: Size, large: Size) -> list[Row]:
    def wall(ran: Ran | None, s: Size, versus_replay: bool) -> str:
        if ran is None:
            return "not run"
        if not ran.ok:
            return f"exit {ran.returncode}: {ran.said[:120]}"
        rate = f"{s.events / ran.seconds:,.0f} events/s" if ran.seconds else ""
        if versus_replay and s.replays:
            rate = f"{ran.seconds / s.replay_seconds:.2f}x replay"
        return f"{ran.seconds:.1f} s ({rate}), peak RSS {ran.peak_rss_mb:,.0f} MB"

    def row(name: str, pick: Callable[[Size], Ran | None], target: str = "-") -> Row:
        a, b = pick(small), pick(large)
        judged = "-"
        if target != "-":  # `replay --check`: within twice replay's time
            ratio = b.seconds / large.replay_seconds if b and b.ok and large.replays else None
            judged = met(ratio is not None and ratio <= 2, "" if ratio else "failed")
        growth = times(b.seconds if b else None, a.seconds if a else None)
        return Row(
            name,
            target,
            wall(a, small, target != "-"),
            wall(b, large, target != "-"),
            growth,
            judged,
        )

    return [
        row("`tracker replay --check`", lambda s: s.check, "≤ 2x replay's time"),
        row("`tracker verify`", lambda s: s.verify),
        row("`tracker export > /dev/null`", lambda s: s.export),
    ]


def _storage(small: Size, large: Size, ref: Reference | None) -> list[Row]:
    def per_event(s: Size) -> str:
        if not s.storage or not s.loaded:
            return "failed"
        x = s.storage
        return f"{x.per_event(x.total):,.0f} B (bodies {s.loaded.mean_body:,.0f} B as received)"

    def total(s: Size) -> float | None:
        return s.storage.per_event(s.storage.total) if s.storage else None

    def database(s: Size) -> str:
        return f"{s.storage.database / 2**20:,.0f} MB" if s.storage else "failed"

    same = (
        f"{ref.per_event:,.0f} B ({ref.bodies:,} bodies of {ref.mean_body:,.0f} B)"
        if ref
        else "failed"
    )
    db = [s.storage.database if s.storage else None for s in (small, large)]
    return [
        Row(
            "`events`: bytes per event, the reference's bodies (testkit.fleet's mix)",
            f"≤ {BYTES_TARGET:,.0f} B (60% of {REFERENCE_BYTES_PER_EVENT} B)",
            "(one measurement)",
            same,
            "-",
            met(ref is not None and ref.per_event <= BYTES_TARGET),
        ),
        Row(
            "`events`: bytes per event, this fleet (heap + indexes + TOAST)",
            "-",
            per_event(small),
            per_event(large),
            times(total(large), total(small)),
            "-",
        ),
        Row(
            "whole database (log, projections)",
            "-",
            database(small),
            database(large),
            times(db[1], db[0]),
            "-",
        ),
    ]
