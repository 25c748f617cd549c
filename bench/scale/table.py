"""The scale benchmark's one table: each measurement at N/10 and at N side by side, its target,
the growth from N/10 to N, and whether the target is met (judged at N, and for list pages also
on that growth)."""

from __future__ import annotations

from bench.scale import cells, commandrows
from bench.scale.cells import Row
from bench.scale.reads import Timing
from bench.scale.reference import Reference
from bench.scale.size import Size

LIST_P50, LIST_P99, GROWTH, ROLLUP_P50 = 15.0, 50.0, 1.5, 5.0
LIST_TARGET = f"p50 ≤ {LIST_P50:g}, p99 ≤ {LIST_P99:g} ms; ≤ {GROWTH:g}x N/10 (p50)"


def rows(small: Size, large: Size, reference: Reference | None) -> list[Row]:
    out = [_loaded(small, large)]
    out += _reads(small, large)
    out += commandrows.replay(small, large)
    out += commandrows.commands(small, large)
    out += commandrows.storage(small, large, reference)
    return out


def _loaded(small: Size, large: Size) -> Row:
    def cell(s: Size) -> str:
        if not s.loaded:
            return "failed"
        x = s.loaded
        return (
            f"{s.events:,} events, {s.devices:,} devices, {s.tasks:,} tasks; generated at "
            f"{x.generation_rate:,.0f}/s, loaded at {x.rate:,.0f}/s ({x.seconds:,.1f} s)"
        )

    return Row("log (COPY loader, no HTTP)", "-", cell(small), cell(large), "-", "-")


def _reads(small: Size, large: Size) -> list[Row]:
    """Each read at both sizes, matched by label (one size may have failed before its reads)."""
    both = [{t.label: t for t in s.reads} for s in (small, large)]
    labels = list(dict.fromkeys(t.label for s in (large, small) for t in s.reads))
    kinds = {t.label: t.kind for s in (small, large) for t in s.reads}
    missing = [Timing(label, kinds[label], "not measured") for label in labels]
    return [
        _read(both[0].get(label, gone), both[1].get(label, gone))
        for label, gone in zip(labels, missing, strict=True)
    ]


def _read(a: Timing, b: Timing) -> Row:
    def cell(t: Timing) -> str:
        if t.status != "ok" or t.p50_ms is None or t.p99_ms is None:
            return t.status
        return f"{cells.ms(t.p50_ms)} / {cells.ms(t.p99_ms)} ms{f' ({t.note})' if t.note else ''}"

    growth = cells.ratio(a.p50_ms, b.p50_ms)
    if b.status != "ok" or b.p50_ms is None or b.p99_ms is None:
        met = "-" if b.status.startswith("n/a") else cells.no(b.status)
        return Row(b.label, _target(b), cell(a), cell(b), growth, met)
    if b.kind == "operation":
        worst = max(x for x in (a.p50_ms, b.p50_ms) if x is not None)
        met = cells.met(worst <= ROLLUP_P50, f"p50 {cells.ms(worst)} ms")
    elif b.kind == "list":
        why = [f"p50 {cells.ms(b.p50_ms)} ms"] if b.p50_ms > LIST_P50 else []
        why += [f"p99 {cells.ms(b.p99_ms)} ms"] if b.p99_ms > LIST_P99 else []
        if a.p50_ms and b.p50_ms / a.p50_ms > GROWTH:
            why.append(f"grew {growth}")
        met = cells.met(not why, ", ".join(why))
    else:
        met = "-"
    return Row(b.label, _target(b), cell(a), cell(b), growth, met)


def _target(t: Timing) -> str:
    if t.kind == "operation":
        return f"p50 ≤ {ROLLUP_P50:g} ms at both sizes"
    return LIST_TARGET if t.kind == "list" else "-"


def markdown(rows: list[Row], small: int, large: int) -> str:
    out = [
        (
            f"| measurement | target | at N/10 ({small:,} devices) | at N ({large:,} devices) "
            "| N vs N/10 | met? |"
        ),
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r.measurement} | {r.target} | {r.small} | {r.large} | {r.growth} | {r.met} |"
        for r in rows
    ]
    return "\n".join(out)
