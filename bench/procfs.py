"""What /proc says about the processes of a measurement.

CPU over a load run: the server's process tree, the PostgreSQL server's (the postmaster and its
backends), the whole machine. On a small machine the load generator, the server and PostgreSQL
share the cores; these figures show which of them was short of CPU. A tree's CPU counts what
its processes used and what the children they reaped had used, so a backend that exits during
the run (asyncpg recycles connections) still counts.

And the memory of a process tree, for commands (replay) that fan out into child processes: the
peak of their sum, which `wait4` alone does not give (and its ru_maxrss is not the child's own:
see `tree_memory_mb`).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
PROC = Path("/proc")


class _Process(NamedTuple):
    parent: int
    cpu: float  # seconds, user + system, all threads, plus those of the children it reaped
    rss: int  # bytes


_postgres: list[int] = []  # the postmaster of this run's PostgreSQL, when it runs here


def watch_postgres(postmaster: int | None) -> None:
    """Name the PostgreSQL server whose CPU every window reports (None: not on this machine)."""
    _postgres[:] = [postmaster] if postmaster else []


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU use over a window, each in % of one core (the machine's in % of all its cores)."""

    server_percent: float | None  # None: no server process in this measurement
    postgres_percent: float | None  # None: PostgreSQL does not run on this machine
    machine_busy_percent: float


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    server: float | None  # CPU seconds of the server's process tree
    postgres: float | None
    busy: float
    total: float


Servers = int | tuple[int, ...] | None  # the server's pid, or each server's; None: no server


class Window:
    """Start before a load run, `end()` after it."""

    def __init__(self, server_pid: Servers) -> None:
        self.server_pid = server_pid
        self.start = _sample(server_pid)

    def end(self) -> Usage:
        end = _sample(self.server_pid)
        seconds = end.at - self.start.at
        total = end.total - self.start.total
        return Usage(
            server_percent=_percent(self.start.server, end.server, seconds),
            postgres_percent=_percent(self.start.postgres, end.postgres, seconds),
            machine_busy_percent=100 * (end.busy - self.start.busy) / total if total else 0.0,
        )


def _percent(start: float | None, end: float | None, seconds: float) -> float | None:
    return None if start is None or end is None else 100 * (end - start) / seconds


def _sample(server_pid: Servers) -> _Sample:
    processes = _processes()

    def cpu(root: int | None) -> float | None:
        if root is None or root not in processes:
            return None
        return sum(processes[pid].cpu for pid in _tree(root, processes))

    def servers() -> float | None:
        roots = server_pid if isinstance(server_pid, tuple) else (server_pid,)
        used = [cpu(root) for root in roots]
        return None if None in used else sum(u for u in used if u is not None)

    busy, total = _machine()
    postgres = cpu(_postgres[0]) if _postgres else None
    return _Sample(time.monotonic(), servers(), postgres, busy, total)


def tree_rss_mb(root: int) -> float:
    """Resident memory of `root` and all its descendants now, summed."""
    return tree_memory_mb(root)[0]


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(resident memory of `root` and its descendants now, summed; the largest high-water mark,
    VmHWM, of any one of them).

    Not `wait4`'s ru_maxrss: Linux carries the parent's high-water mark into a child at exec
    (exec_mmap records the old, shared or copied, address space's), so a child of a 300 MB
    benchmark process reports at least 300 MB whatever it used itself. VmHWM is the child's own.
    """
    processes = _processes()
    members = _tree(root, processes)
    largest = max((_high_water(pid) for pid in members), default=0)
    return sum(processes[pid].rss for pid in members) / 2**20, largest / 2**20


def _high_water(pid: int) -> int:
    """The peak resident memory of the process's own address space, in bytes (0 if gone)."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


def _processes() -> dict[int, _Process]:
    found = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # Fields after the name, from 0: ppid 1; utime, stime 11, 12; cutime, cstime 13, 14
        # (the children it reaped); rss 21 (pages).
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry.name)] = _Process(
            parent=int(fields[1]),
            cpu=sum(int(f) for f in fields[11:15]) / TICK,
            rss=int(fields[21]) * PAGE,
        )
    return found


def _tree(root: int, processes: dict[int, _Process]) -> set[int]:
    members, grew = {root} & processes.keys(), True
    while grew:
        before = len(members)
        members |= {pid for pid, p in processes.items() if p.parent in members}
        grew = len(members) > before
    return members


def _machine() -> tuple[float, float]:
    """(busy, total) jiffies over all cores since boot."""
    values = [int(v) for v in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return float(total - idle), float(total)


def own_seconds() -> float:
    """CPU seconds of this process so far (all threads): for baselines that run in it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
