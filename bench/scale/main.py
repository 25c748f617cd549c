"""`python -m bench scale [--devices N] [--smoke]`: the tracker at fleet scale.

Loads a generated fleet (N/10 devices, then N, each in a fresh database) with a COPY-based
loader, builds the projections with `tracker replay`, and measures replay, `replay --check`,
`verify`, `export`, bytes per event, the swap pause under load and every read endpoint. Prints
one table with the two sizes side by side, writes the raw figures as JSON and the report to
docs/scale.md (with --smoke, next to the JSON instead, so CI never touches the docs).
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import postgres, procfs
from bench.facts import facts
from bench.processes import ROOT
from bench.scale import document, reference, size, table
from bench.scale.plan import plan

REFERENCE_SMOKE = 20_000  # reference bodies in a smoke run


@dataclass(frozen=True, slots=True)
class Options:
    devices: int
    seed: int
    smoke: bool
    settings: size.Settings
    json: Path
    doc: Path


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
    parser.add_argument(
        "--doc", type=Path, help="the report (docs/scale.md; smoke: next to the JSON)"
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    devices = args.devices or (2_000 if smoke else 1_000_000)
    if devices < 1_000:
        parser.error("--devices must be at least 1,000 (N/10 must hold every rollout)")
    json = args.json or ROOT / f"bench/results/scale{'-smoke' if smoke else ''}.json"
    doc = args.doc or (json.with_suffix(".md") if smoke else ROOT / "docs/scale.md")
    settings = size.Settings(
        runs=args.runs or (1 if smoke else 3),
        swaps=args.swaps or (1 if smoke else 3),
        requests=args.requests or (20 if smoke else 200),
        warmup=args.warmup or (3 if smoke else 20),
        swap_bodies=2_000 if smoke else 20_000,
    )
    return Options(devices, args.seed, smoke, settings, json, doc)


async def run(o: Options, argv: list[str]) -> None:
    started = time.monotonic()
    command = shlex.join(["python", "-m", "bench", "scale", *argv])
    with (
        tempfile.TemporaryDirectory(prefix="tracker-scale-") as tmp,
        postgres.server() as (server_url, source),
    ):
        procfs.watch_postgres(await postgres.postmaster(server_url))
        known = await facts(server_url, source)
        print(document.header(known, command), flush=True)
        print(
            "\nThe loader is COPY-based: bodies are validated by the tracker's own `decode` and "
            "COPYed into `events`, bypassing HTTP; `tracker replay` builds the projections.",
            flush=True,
        )
        count = REFERENCE_SMOKE if o.smoke else reference.BODIES
        print(
            f"\n== bytes per event on the reference's bodies: {count:,} from bench/workload.fleet"
        )
        ref = await _reference(server_url, count)
        now_us = time.time_ns() // 1000
        measured = [
            await size.measure(plan(devices, o.seed, now_us), o.settings, server_url, Path(tmp))
            for devices in (o.devices // 10, o.devices)
        ]
    small, large = measured
    rows = table.rows(small, large, ref)
    minutes = (time.monotonic() - started) / 60
    shown = table.markdown(rows, small.devices, large.devices)
    print(f"\n{shown}\n")
    for failure in small.failures + large.failures:
        print(f"- failed: {failure}")
    document.write_json(o.json, known, command, measured, ref, rows, minutes)
    o.doc.parent.mkdir(parents=True, exist_ok=True)
    o.doc.write_text(document.markdown(known, command, measured, ref, shown, minutes))
    print(f"figures: {o.json}; report: {o.doc}; the whole run took {minutes:.1f} min")


async def _reference(server_url: str, count: int) -> reference.Reference | None:
    try:
        ref = await reference.measure(server_url, count)
    except Exception as error:  # noqa: BLE001 - the sizes' figures still count
        print(f"  FAILED: {type(error).__name__}: {str(error).strip()[-300:]}", flush=True)
        return None
    print(
        f"  {ref.per_event:,.0f} bytes per event on bodies of {ref.mean_body:,.0f} B (the "
        f"reference: {reference.REFERENCE_BYTES_PER_EVENT} B on "
        f"{reference.REFERENCE_BODY_BYTES} B)",
        flush=True,
    )
    return ref


def main(argv: list[str]) -> int:
    o = options(argv)
    asyncio.run(run(o, argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
