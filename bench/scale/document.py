"""The scale benchmark's record: the JSON of every figure, and docs/scale.md."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.facts import cpu_model, memory_gb
from bench.report import plain
from bench.scale.cells import Row
from bench.scale.commands import Storage
from bench.scale.reference import REFERENCE_BODY_BYTES, REFERENCE_BYTES_PER_EVENT, Reference
from bench.scale.size import Size


def header(facts: dict[str, Any], command: str) -> str:
    pg = facts["postgres"]
    settings = ", ".join(f"{k} = {v}" for k, v in pg.items() if k != "server_version")
    return "\n".join(
        [
            f"## tracker at fleet scale, {facts['started']}",
            "",
            f"- command: `{command}`",
            (
                f"- machine: {facts['cores']} cores ({cpu_model()}), {memory_gb():.0f} GB "
                f"memory, {facts['platform']}, Python {facts['python']}"
            ),
            f"- PostgreSQL {pg['server_version']} ({facts['database']}): {settings}",
            f"- tracker {facts['tracker_commit']}",
        ]
    )


def write_json(  # noqa: PLR0913, PLR0917 - one call site, each is a part of the record
    path: Path,
    facts: dict[str, Any],
    command: str,
    sizes: list[Size],
    reference: Reference | None,
    rows: list[Row],
    minutes: float,
) -> None:
    figures = []
    for s in sizes:
        figure = plain(s)
        figure |= {
            "events": s.events,
            "replay_seconds": s.replay_seconds,
            "replay_rate": s.replay_rate,
            "replay_peak_rss_mb": s.replay_peak_mb,
        }
        if s.loaded:
            figure["loaded"] |= {"rate": s.loaded.rate, "generation_rate": s.loaded.generation_rate}
        figures.append(figure)
    document = {
        "command": command,
        "facts": facts,
        "minutes": minutes,
        "reference": {
            "stated_bytes_per_event": REFERENCE_BYTES_PER_EVENT,
            "stated_body_bytes": REFERENCE_BODY_BYTES,
            "measured": plain(reference) if reference else None,
            "measured_bytes_per_event": reference.per_event if reference else None,
        },
        "sizes": figures,
        "table": [asdict(r) for r in rows],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


INTRO = """\
# The tracker at fleet scale

Written by `python -m bench scale` (bench/scale/); rerun it to refresh this page. CI runs
`python -m bench scale --smoke`, which writes its report next to its JSON, never here.

**What is loaded.** A generated fleet (bench/scale/plan.py, fleetgen.py): four apps; one big
software rollout over ~70% of the devices and twelve smaller firmware and software rollouts
(0.03% to 8% of the fleet); each device downloads, installs and reports a result (~8% FAIL with
six error codes, ~2% left stuck in a state other than idle, ~1% illegal moves, 10% of the
reports delivered twice); one IoTDA batch task per 1,000 devices (4 to 6 events each). Every
body uses the platforms' own field names. Arrival times spread over the nine hours before the
run, devices interleaved as a fleet delivers them; deterministic for `--seed`.

**How.** The loader is COPY-based and bypasses HTTP: each body is validated by the tracker's
own `decode` and written with the store's `copy_row` (its columns and hash chain) through
asyncpg's `copy_records_to_table`, 50,000 rows per COPY, in arrival order; then `VACUUM
(ANALYZE)`, as autovacuum would after a bulk load. `tracker replay`, run as its own process,
builds the projections (that is also the replay measurement). N/10 and N devices are each
loaded into a fresh database.
"""

METHOD = """\
## How each figure is taken

- **Reads**: one `tracker serve` (tokens set), one client on one keep-alive HTTP/1.1
  connection (Python's `http.client`, the leanest client at hand, so the time is mostly the
  server's), one request at a time: warm-up requests, then the timed ones; cells are
  **p50 / p99 in ms**. Lists ask for `limit=100`. A device or task document rotates through
  200 of them (devices of the big rollout); `?at=` reads 20 devices each at the middle of its
  own history. A *deep page* is the page half way down the list (the cursor found by walking
  the list in pages of 1,000). `<big>` is the big rollout, `<small>` the smallest, `<app>`
  the big rollout's app, `<code>` E101 (download timeout). ANALYZE runs just before, as
  autovacuum would within a minute of replay swapping new tables in. "n/a (not served)": the
  server's OpenAPI document does not list that path or parameter.
- **Replay**: `tracker replay` as its own process: wall time start to exit, events/s over it,
  peak RSS of its whole process tree (sampled every 50 ms: it may fan out), median of the
  quiet runs. **Swap pause**: more replays while 32 clients POST new devices' notifications
  to the server (closed loop, keep-alive, ingest token); the pause is what `tracker replay`
  reports ("ingestion paused X ms for the swap"), median and max over the runs.
- **`replay --check`, `verify`, `export > /dev/null`**: each its own process, wall time.
- **Bytes per event**: `pg_total_relation_size('events')` (heap, indexes, TOAST, free space
  and visibility maps) over its row count, after VACUUM. The target, 60% of 675 B (measured
  before bodies were stored once and compressed, on 200,000 bodies of 208 B on average from
  bench/workload.fleet), is judged on those same bodies, loaded the same way into a database
  of their own (bench/scale/reference.py; 20,000 of them with --smoke). The fleet's own figure
  is shown at both sizes.
- **met?** judges the target at N; a list page must also stay within 1.5x its p50 at N/10.
  Targets stated for 1M devices (replay's rate) show n/a below it.
"""


MISSED = """Where a target is missed, docs/performance.md ("Fleet scale") says by how much and
shows the profile that says why.
"""


def markdown(  # noqa: PLR0913, PLR0917 - one call site, each is a part of the record
    facts: dict[str, Any],
    command: str,
    sizes: list[Size],
    reference: Reference | None,
    shown: str,
    minutes: float,
) -> str:
    run = header(facts, command).split("\n", 2)[2]  # its lines, without the title
    parts = [INTRO, f"## The run\n\n- started {facts['started']}, took {minutes:.0f} min\n{run}\n"]
    parts += ["## Results\n", shown + "\n", MISSED, _storage(sizes, reference), _phases(sizes)]
    parts.append(METHOD)
    failures = [f"- {s.devices:,} devices, {f}" for s in sizes for f in s.failures]
    if failures:
        parts.append("## Failures\n\n" + "\n".join(failures) + "\n")
    return "\n".join(parts)


def _phases(sizes: list[Size]) -> str:
    """Where each size's time went (wall seconds)."""
    names = list(dict.fromkeys(name for s in sizes for name in s.phases))
    out = [
        "## Time per phase (wall seconds)\n",
        f"| phase | {' | '.join(f'{s.devices:,} devices' for s in sizes)} |",
        "|---|" + "---|" * len(sizes),
    ]
    for name in names:
        cells = [f"{s.phases[name]:,.1f}" if name in s.phases else "-" for s in sizes]
        out.append(f"| {name} | {' | '.join(cells)} |")
    out.append(f"| **all of it** | {' | '.join(f'{s.seconds:,.0f}' for s in sizes)} |")
    return "\n".join(out) + "\n"


def _storage(sizes: list[Size], reference: Reference | None) -> str:
    """Per event, at each size and on the reference's bodies."""
    stored = [(f"{s.devices:,} devices", s.storage) for s in sizes]
    if reference:
        stored.append((f"{reference.bodies:,} reference bodies", reference.storage))
    out = [
        "## Bytes per event (`events`)\n",
        f"| per event | {' | '.join(name for name, _ in stored)} |",
        "|---|" + "---|" * len(stored),
    ]
    parts: tuple[tuple[str, Callable[[Storage], int]], ...] = (
        ("heap", lambda x: x.heap),
        ("indexes", lambda x: x.indexes),
        ("TOAST", lambda x: x.toast),
        ("free space and visibility maps", lambda x: x.other),
        ("**total**", lambda x: x.total),
    )
    for name, pick in parts:
        cells = [f"{x.per_event(pick(x)):,.0f} B" if x else "-" for _, x in stored]
        out.append(f"| {name} | {' | '.join(cells)} |")
    rows = [f"{x.rows:,}" if x else "-" for _, x in stored]
    whole = [f"{x.database / 2**20:,.0f} MB" if x else "-" for _, x in stored]
    mean = [f"{s.loaded.mean_body:,.0f} B" if s.loaded else "-" for s in sizes]
    mean += [f"{reference.mean_body:,.0f} B"] if reference else []
    out += [
        f"| events (rows) | {' | '.join(rows)} |",
        f"| bodies as received, mean | {' | '.join(mean)} |",
        f"| whole database | {' | '.join(whole)} |",
    ]
    return "\n".join(out) + "\n"
