"""The scale table's rows for the commands (replay, its swap under load, `--check`, `verify`,
`export`) and for what the log takes on disk."""

from __future__ import annotations

from collections.abc import Callable

from bench.scale import cells
from bench.scale.cells import Row
from bench.scale.commands import Ran, Storage
from bench.scale.reference import BYTES_TARGET, REFERENCE_BYTES_PER_EVENT, Reference
from bench.scale.size import Size

FULL = 1_000_000  # devices: the targets stated over the full fleet are judged from here


def replay(small: Size, large: Size) -> list[Row]:
    full = large.devices >= FULL

    def rate(s: Size) -> str:
        if not s.replays:
            return "failed"
        return (
            f"{s.replay_rate:,.0f} events/s ({s.replay_seconds:.1f} s, median of {len(s.replays)})"
        )

    def swap(s: Size) -> str:
        return s.swaps.summary() if s.swaps else "failed"

    def posts(s: Size) -> str:
        if not s.swaps:
            return "failed"
        w, q = s.swaps.replaying, s.swaps.quiet
        failed = f"; {s.swaps.failed:,} failed" if s.swaps.failed else ""
        quiet = f"no replay: p99 {cells.ms(q.p99_ms)}"
        return f"p99 {cells.ms(w.p99_ms)}, max {w.max_ms:,.0f} ms ({quiet}){failed}"

    both = (small, large)
    peaks = [s.replay_peak_mb for s in both if s.replays]
    pauses = [s.swaps.median_ms for s in both if s.swaps and s.swaps.pauses_ms]
    return [
        Row(
            "replay (`tracker replay`, its own process)",
            "≥ 100,000 events/s at 1M devices",
            rate(small),
            rate(large),
            cells.ratio(small.replay_rate, large.replay_rate),
            (cells.met(large.replay_rate >= 100_000) if full else "n/a (N < 1M)")
            if large.replays
            else cells.no("failed"),
        ),
        Row(
            "replay peak RSS (its process tree)",
            "≤ 300 MB at both sizes",
            f"{small.replay_peak_mb:,.0f} MB",
            f"{large.replay_peak_mb:,.0f} MB",
            cells.ratio(small.replay_peak_mb, large.replay_peak_mb),
            cells.met(len(peaks) == 2 and max(peaks) <= 300),
        ),
        Row(
            "swap pause while 32 clients post",
            "median ≤ 100 ms at both sizes",
            swap(small),
            swap(large),
            "-",
            cells.met(len(pauses) == 2 and max(pauses) <= 100),
        ),
        Row("32 clients' POSTs while replaying", "-", posts(small), posts(large), "-", "-"),
    ]


def commands(small: Size, large: Size) -> list[Row]:
    def wall(pick: Callable[[Size], Ran | None], s: Size, versus_replay: bool = False) -> str:
        ran = pick(s)
        if ran is None:
            return "not run"
        if not ran.ok:
            return f"exit {ran.returncode}: {ran.said[:120]}"
        rate = f"{s.events / ran.seconds:,.0f} events/s" if ran.seconds else ""
        if versus_replay and s.replays:
            rate = f"{ran.seconds / s.replay_seconds:.2f}x replay"
        return f"{ran.seconds:.1f} s ({rate}), peak RSS {ran.peak_rss_mb:,.0f} MB"

    def seconds(pick: Callable[[Size], Ran | None], s: Size) -> float | None:
        ran = pick(s)
        return ran.seconds if ran else None

    check = large.check
    ratio = check.seconds / large.replay_seconds if check and check.ok and large.replays else None
    out = [
        Row(
            "`tracker replay --check`",
            "≤ 2x replay's time",
            wall(lambda s: s.check, small, versus_replay=True),
            wall(lambda s: s.check, large, versus_replay=True),
            cells.ratio(seconds(lambda s: s.check, small), seconds(lambda s: s.check, large)),
            cells.met(ratio is not None and ratio <= 2, "" if ratio else "failed"),
        )
    ]
    for name, pick in (
        ("`tracker verify`", lambda s: s.verify),
        ("`tracker export > /dev/null`", lambda s: s.export),
    ):
        out.append(
            Row(
                name,
                "-",
                wall(pick, small),
                wall(pick, large),
                cells.ratio(seconds(pick, small), seconds(pick, large)),
                "-",
            )
        )
    return out


def storage(small: Size, large: Size, ref: Reference | None) -> list[Row]:
    def per_event(s: Size) -> str:
        if not s.storage or not s.loaded:
            return "failed"
        x = s.storage
        return f"{x.per_event(x.total):,.0f} B (bodies {s.loaded.mean_body:,.0f} B as received)"

    def database(s: Size) -> str:
        return f"{s.storage.database / 2**20:,.0f} MB" if s.storage else "failed"

    def size_of(s: Size, pick: Callable[[Storage], int]) -> float | None:
        return s.storage.per_event(pick(s.storage)) if s.storage else None

    target = f"≤ {BYTES_TARGET:,.0f} B (60% of {REFERENCE_BYTES_PER_EVENT} B)"
    same = (
        f"{ref.per_event:,.0f} B ({ref.bodies:,} bodies of {ref.mean_body:,.0f} B)"
        if ref
        else "failed"
    )
    return [
        Row(
            "`events`: bytes per event, the reference's bodies (bench/workload.fleet)",
            target,
            "(one measurement)",
            same,
            "-",
            cells.met(ref is not None and ref.per_event <= BYTES_TARGET),
        ),
        Row(
            "`events`: bytes per event, this fleet (heap + indexes + TOAST)",
            "-",
            per_event(small),
            per_event(large),
            cells.ratio(size_of(small, lambda x: x.total), size_of(large, lambda x: x.total)),
            "-",
        ),
        Row(
            "whole database (log, projections)",
            "-",
            database(small),
            database(large),
            cells.ratio(
                small.storage.database if small.storage else None,
                large.storage.database if large.storage else None,
            ),
            "-",
        ),
    ]
