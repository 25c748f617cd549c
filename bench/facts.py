"""What a reader needs to know about the machine and the software a benchmark ran on."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.util import find_spec
from pathlib import Path

from bench import peer, postgres
from bench.processes import ROOT


async def facts(server_url: str, source: str) -> dict[str, object]:
    return {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "cores": os.cpu_count(),
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "database": source,
        "postgres": await postgres.settings(server_url),
        "tracker_commit": git_commit(),
        "eventsourcing": peer.version(),
        "wrk": _wrk_version(),
        "bare_http_loop": "uvloop" if find_spec("uvloop") else "asyncio",
    }


def git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "tracker", "sql")
    return f"{commit} (+ uncommitted changes in tracker/ or sql/)" if dirty else commit


def _wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return " ".join((done.stdout + done.stderr).split()[:2]) or "wrk (version unknown)"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return float("nan")
