"""How the three benchmark programs report: the facts of a run, markdown tables, JSON records.

Each measurement module turns its own figures into rows, beside the targets it judges them by;
this module writes them, the same way for `python -m bench`, `bench scale` and `bench dashboard`.
A ratio divides two figures measured in the same run, on the same database server; a target is
met or not, or n/a when the run was too small for it to mean anything (e.g. --smoke).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

from bench import postgres
from bench.load import Load
from bench.processes import ROOT

SATURATED = 90.0  # % of a core per generator process, or of the machine


class Line(NamedTuple):
    """A row of `python -m bench`'s table."""

    measurement: str
    figure: str
    baseline: str = "-"
    ratio: str = "-"
    target: str = "-"
    met: str = "-"


LINE_HEADER = ("measurement", "figure", "baseline (same run)", "ratio", "target", "met?")


def met(ok: bool, why: str = "") -> str:
    return "yes" if ok else no(why)


def no(why: str = "") -> str:
    return f"**NO**{f' ({why})' if why else ''}"


def times(part: float | None, whole: float | None) -> str:
    """`part / whole` as a factor ("1.24x"), or "-" when either is missing (or nan)."""
    if not whole or part is None or part != part or whole != whole:  # noqa: PLR0124 - nan
        return "-"
    return f"{part / whole:.2f}x"


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def markdown(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    out = [f"| {' | '.join(header)} |", "|" + "---|" * len(header)]
    return "\n".join(out + [f"| {' | '.join(map(str, row))} |" for row in rows])


async def facts(server_url: str, source: str, **more: object) -> dict[str, Any]:
    """What a reader needs to know about the machine and the software a run ran on."""
    return {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "cores": os.cpu_count(),
        "cpu": _proc("/proc/cpuinfo", "model name", platform.processor() or "unknown"),
        "memory_gb": int(_proc("/proc/meminfo", "MemTotal", "0").split()[0]) / 2**20,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "database": source,
        "postgres": await postgres.settings(server_url),
        "tracker_commit": _commit(),
        "wrk": _output(["wrk", "-v"], 2) or "wrk (version unknown)",
        "bare_http_loop": "uvloop" if find_spec("uvloop") else "asyncio",
        **more,
    }


def _proc(path: str, key: str, otherwise: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return otherwise


def _output(command: list[str], words: int = 0) -> str:
    """What `command` says (its first `words` words, stderr included, if given); "" if absent."""
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    if not words:
        return done.stdout.strip()
    return " ".join((done.stdout + done.stderr).split()[:words])


def _commit() -> str:
    commit = _output(["git", "rev-parse", "--short", "HEAD"]) or "unknown"
    status = ["git", "status", "--porcelain", "--untracked-files=no", "--", "tracker", "sql"]
    return f"{commit} (+ uncommitted changes in tracker/ or sql/)" if _output(status) else commit


def header(title: str, facts: dict[str, Any], *more: str) -> str:
    pg = facts["postgres"]
    settings = ", ".join(f"{k} = {v}" for k, v in pg.items() if k != "server_version")
    machine = f"{facts['cores']} cores ({facts['cpu']}), {facts['memory_gb']:.0f} GB memory"
    return "\n".join(
        [
            f"## {title}, {facts['started']}",
            "",
            f"- machine: {machine}, {facts['platform']}, Python {facts['python']}",
            f"- PostgreSQL {pg['server_version']} ({facts['database']}): {settings}",
            *(f"- {line}" for line in more),
        ]
    )


def cpu_table(named: list[tuple[str, Load]]) -> str:
    """Every load run: the generator's CPU and the server's and PostgreSQL's (their process
    trees, exited children included) in % of one core; the machine's in % of all cores."""
    rows = [
        (
            name,
            x.generator,
            x.connections,
            f"{x.rate:,.0f}/s" + (f", {x.errors:,} errors" if x.errors else ""),
            _or_dash(f"{x.p50_ms:.1f} / {x.p99_ms:.1f}", x.p50_ms),  # none: a queue drained
            _or_dash(f"{x.generator_cpu_percent:.0f}%", x.generator_cpu_percent),
            *(
                "-" if s is None else f"{s:.0f}%"
                for s in (x.cpu.server_percent, x.cpu.postgres_percent)
            ),
            f"{x.cpu.machine_busy_percent:.0f}%",
        )
        for name, x in named
    ]
    head = ("run", "generator", "conns", "rate", "p50 / p99 ms", "generator CPU", "server CPU")
    return markdown((*head, "PostgreSQL CPU", "machine busy"), rows)


def _or_dash(text: str, value: float) -> str:
    """`text`, or "-" when `value` was not measured (nan)."""
    return "-" if value != value else text  # noqa: PLR0124 - nan


def notes(settings: dict[str, str], named: list[tuple[str, Load]]) -> list[str]:
    """Conditions under which a figure means less than it seems."""
    out = []
    if settings["synchronous_commit"] != "on" or settings["fsync"] != "on":
        out.append("synchronous_commit or fsync is off: the targets assume both on")
    if settings.get("autovacuum", "on") != "on":
        out.append(
            "autovacuum is off on this server: every update leaves a dead row and index "
            "entries behind, so ingest slows as a run goes on"
        )
    for name, x in named:
        processes = 2 if x.generator.startswith("open loop") else 1
        if x.generator_cpu_percent > SATURATED * processes:
            out.append(f"{name}: the load generator was near its CPU limit; the rate may be its")
        if x.errors:
            out.append(f"{name}: {x.errors:,} requests failed or were not answered 2xx")
    if busy := [name for name, x in named if x.cpu.machine_busy_percent >= SATURATED]:
        out.append(
            f"the machine's CPUs were ≥ {SATURATED:.0f}% busy during: {', '.join(busy)} "
            "(generator, server and PostgreSQL share them; see the CPU table)"
        )
    return out


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plain(document), indent=2, default=str) + "\n")


def plain(value: Any) -> Any:  # noqa: ANN401 - any figures, as JSON-ready values
    """Dataclasses as their fields and derived properties; tuples of rows as dicts."""
    if is_dataclass(value) and not isinstance(value, type):
        derived = [name for name, x in vars(type(value)).items() if isinstance(x, property)]
        names = [f.name for f in fields(value)] + derived
        return {name: plain(getattr(value, name)) for name in names}
    if hasattr(value, "_asdict"):
        return plain(value._asdict())
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
