"""`python -m bench scale [--devices N] [--smoke]`: the tracker at fleet scale.

Loads a generated fleet (N/10 devices, then N, each in a fresh database) with the COPY loader,
builds the projections with `tracker replay`, and measures replay, `replay --check`, `verify`,
`export`, bytes per event, the swap pause under load and every read endpoint. Prints one table
with the two sizes side by side, writes the raw figures as JSON and the report to docs/scale.md
(with --smoke, next to the JSON instead, so CI never touches the docs).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import postgres, processes, report
from bench.scale import size, table
from bench.scale.plan import plan

REFERENCE_BODIES, REFERENCE_SMOKE = 200_000, 20_000  # the reference's bodies measured
INTRO = """\
# The tracker at fleet scale

Written by `python -m bench scale`; rerun it to refresh this page (CI runs it with `--smoke`,
which writes its report next to its JSON, never here). What is loaded and how each figure is
taken: [bench/README.md](../bench/README.md), "Fleet scale". **met?** judges the target at N;
a list page must also stay within 1.5x its p50 at N/10. Where a target is missed,
docs/performance.md ("Fleet scale") says by how much and shows the profile that says why.
"""


@dataclass(frozen=True, slots=True)
class Options:
    devices: int
    seed: int
    smoke: bool
    settings: size.Settings
    json: Path
    doc: Path
    command: str


def options(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench scale",
        description="The tracker at fleet scale: N/10 and N devices side by side.",
    )
    parser.add_argument("--devices", type=int, help="N (1,000,000; smoke 2,000)")
    parser.add_argument("--smoke", action="store_true", help="tiny, about a minute (CI)")
    parser.add_argument("--runs", type=int, help="quiet replays per size (3; smoke 1)")
    parser.add_argument("--swaps", type=int, help="replays while clients post (3; smoke 1)")
    parser.add_argument("--requests", type=int, help="timed requests per read (200; smoke 20)")
    parser.add_argument("--warmup", type=int, help="untimed requests first (20; smoke 3)")
    parser.add_argument("--seed", type=int, default=7, help="the fleet's seed (7)")
    parser.add_argument("--json", type=Path, help="raw figures (bench/results/scale.json)")
    parser.add_argument("--doc", type=Path, help="the report (docs/scale.md; smoke: by the JSON)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    devices = args.devices or (2_000 if smoke else 1_000_000)
    if devices < 1_000:
        parser.error("--devices must be at least 1,000 (N/10 must hold every rollout)")
    json = args.json or processes.ROOT / f"bench/results/scale{'-smoke' if smoke else ''}.json"
    doc = args.doc or (json.with_suffix(".md") if smoke else processes.ROOT / "docs/scale.md")
    settings = size.Settings(
        runs=args.runs or (1 if smoke else 3),
        swaps=args.swaps or (1 if smoke else 3),
        requests=args.requests or (20 if smoke else 200),
        warmup=args.warmup or (3 if smoke else 20),
        swap_bodies=2_000 if smoke else 20_000,
    )
    command = shlex.join(["python", "-m", "bench", "scale", *argv])
    return Options(devices, args.seed, smoke, settings, json, doc, command)


async def run(o: Options) -> None:
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="tracker-scale-") as tmp,
        postgres.server() as (pg, source),
    ):
        processes.watch_postgres(await postgres.postmaster(pg))
        facts = await report.facts(pg, source)
        print(_header(facts, o), flush=True)
        print(
            "\nThe loader is COPY-based: bodies are validated by the tracker's own `decode` and "
            "COPYed into `events`, bypassing HTTP; `tracker replay` builds the projections.",
        )
        count = REFERENCE_SMOKE if o.smoke else REFERENCE_BODIES
        print(f"\n== bytes per event on the reference's bodies: {count:,} of testkit.fleet's mix")
        ref = await _reference(pg, count)
        now_us = time.time_ns() // 1000
        small, large = [
            await size.measure(plan(devices, o.seed, now_us), o.settings, pg, Path(tmp))
            for devices in (o.devices // 10, o.devices)
        ]
    rows = table.rows(small, large, ref)
    minutes = (time.monotonic() - started) / 60
    header = (
        *table.HEADER[:2],
        f"at N/10 ({small.devices:,} devices)",
        f"at N ({large.devices:,} devices)",
    )
    shown = report.markdown((*header, *table.HEADER[4:]), rows)
    print(f"\n{shown}\n")
    for failure in small.failures + large.failures:
        print(f"- failed: {failure}")
    stated = {
        "bytes_per_event": size.REFERENCE_BYTES_PER_EVENT,
        "body_bytes": size.REFERENCE_BODY_BYTES,
    }
    document = {"command": o.command, "facts": facts, "minutes": minutes, "table": rows}
    document |= {"reference": {"stated": stated, "measured": ref}, "sizes": [small, large]}
    report.write_json(o.json, document)
    o.doc.parent.mkdir(parents=True, exist_ok=True)
    o.doc.write_text(_doc(facts, o, [small, large], ref, shown, minutes))
    print(f"figures: {o.json}; report: {o.doc}; the whole run took {minutes:.1f} min")


async def _reference(server_url: str, count: int) -> size.Reference | None:
    try:
        ref = await size.reference(server_url, count)
    except Exception as error:  # noqa: BLE001 - the sizes' figures still count
        print(f"  FAILED: {type(error).__name__}: {str(error).strip()[-300:]}", flush=True)
        return None
    print(
        f"  {ref.per_event:,.0f} bytes per event on bodies of {ref.mean_body:,.0f} B (the "
        f"reference: {size.REFERENCE_BYTES_PER_EVENT} B on {size.REFERENCE_BODY_BYTES} B)",
        flush=True,
    )
    return ref


def _header(facts: dict[str, Any], o: Options) -> str:
    return report.header(
        "tracker at fleet scale",
        facts,
        f"command: `{o.command}`",
        f"tracker {facts['tracker_commit']}",
    )


def _doc(  # noqa: PLR0913, PLR0917 - one call site, each is a part of the record
    facts: dict[str, Any],
    o: Options,
    sizes: list[size.Size],
    ref: size.Reference | None,
    shown: str,
    minutes: float,
) -> str:
    """docs/scale.md: the run, the table, bytes per event in parts, the time of each phase."""
    run = _header(facts, o).split("\n", 2)[2]  # its lines, without the title
    stored = [(f"{s.devices:,} devices", s.storage) for s in sizes]
    stored += [(f"{ref.bodies:,} reference bodies", ref.storage)] if ref else []
    parts: list[tuple[str, Callable[[size.Storage], float]]] = [
        ("heap", lambda x: x.per_event(x.heap)),
        ("indexes", lambda x: x.per_event(x.indexes)),
        ("TOAST", lambda x: x.per_event(x.toast)),
        ("free space and visibility maps", lambda x: x.per_event(x.other)),
        ("**total**", lambda x: x.per_event(x.total)),
    ]
    per_event = [
        [name] + [f"{pick(x):,.0f} B" if x else "-" for _, x in stored] for name, pick in parts
    ]
    per_event.append(["events (rows)"] + [f"{x.rows:,}" if x else "-" for _, x in stored])
    mean = [f"{s.loaded.mean_body:,.0f} B" if s.loaded else "-" for s in sizes]
    per_event.append(
        ["bodies as received, mean", *mean] + ([f"{ref.mean_body:,.0f} B"] if ref else [])
    )
    per_event.append(
        ["whole database"] + [f"{x.database / 2**20:,.0f} MB" if x else "-" for _, x in stored]
    )
    phases = list(dict.fromkeys(name for s in sizes for name in s.phases))
    timed = [
        [name] + [f"{s.phases[name]:,.1f}" if name in s.phases else "-" for s in sizes]
        for name in phases
    ]
    timed.append(["**all of it**"] + [f"{s.seconds:,.0f}" for s in sizes])
    failures = [f"- {s.devices:,} devices, {f}" for s in sizes for f in s.failures]
    return "\n".join(
        [
            INTRO,
            f"## The run\n\n- started {facts['started']}, took {minutes:.0f} min\n{run}\n",
            f"## Results\n\n{shown}\n",
            "## Bytes per event (`events`)\n",
            report.markdown(("per event", *(name for name, _ in stored)), per_event) + "\n",
            "## Time per phase (wall seconds)\n",
            report.markdown(("phase", *(f"{s.devices:,} devices" for s in sizes)), timed) + "\n",
            *(["## Failures\n\n" + "\n".join(failures) + "\n"] if failures else []),
        ]
    )


def main(argv: list[str]) -> int:
    asyncio.run(run(options(argv)))
    return 0
