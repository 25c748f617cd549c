"""What the processes of a measurement use: CPU over a load run, and peak memory of a command.

A child's own CPU time comes from `os.wait4`, which returns the usage of exactly that child (and
the children it reaped). Over a load run, /proc gives the CPU of the server's process tree, of
PostgreSQL's (the postmaster and its backends) and of the whole machine: on a small machine the
load generator, the server and PostgreSQL share the cores, and these show who was short of CPU.
A tree's CPU counts what the children its processes reaped had used, so a backend that exits
during the run (asyncpg recycles connections) still counts.

A command that may fan out into child processes (replay) is measured by the peak of its tree's
summed resident memory, sampled, and the largest high-water mark (VmHWM) of any one of them. Not
`wait4`'s ru_maxrss: Linux carries the parent's high-water mark into a child at exec, so a child
of a 300 MB benchmark process reports at least 300 MB whatever it used itself.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
TICK, PAGE, PROC = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE"), Path("/proc")
MEMORY_EVERY = 0.05  # seconds between samples of a command's memory


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    seconds: float  # wall time from start to exit
    cpu_seconds: float  # user + system
    stdout: str
    stderr: str

    def check(self, what: str) -> Finished:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{self.stderr[-4000:]}")
        return self


class Measured:
    """A running child (cwd: the repository); `wait()` reaps it with wait4 and returns what it
    used. `discard_stdout`: its standard output goes to /dev/null (e.g. `tracker export`)."""

    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, *, discard_stdout: bool = False
    ) -> None:
        self._out = None if discard_stdout else tempfile.TemporaryFile()  # noqa: SIM115
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed once reaped
        self._finished: Finished | None = None
        self.started = time.monotonic()
        stdout = subprocess.DEVNULL if self._out is None else self._out
        try:
            self.process = subprocess.Popen(
                command, stdout=stdout, stderr=self._err, env=env, cwd=ROOT
            )
        except OSError:  # e.g. no wrk here: its files would be left for the collector to close
            self._err.close()
            if self._out is not None:
                self._out.close()
            raise

    def poll(self) -> Finished | None:
        """What it used if it has exited (reaped here, once), else None. Never call
        `self.process.poll()` or `wait()`: they reap the child and its usage is lost."""
        if self._finished is None:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self._finished = Finished(
                    self.process.returncode,
                    time.monotonic() - self.started,
                    usage.ru_utime + usage.ru_stime,
                    _read(self._out),
                    _read(self._err),
                )
        return self._finished

    def wait(self, timeout: float | None = None) -> Finished:
        """Wait for it to exit; past `timeout`, kill it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (finished := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                self.process.kill()
                deadline = None
            time.sleep(0.01)
        return finished


def _read(file: IO[bytes] | None) -> str:
    if file is None:
        return ""
    file.seek(0)
    text = file.read().decode(errors="replace")
    file.close()
    return text


def run(command: list[str], timeout: float | None = None) -> Finished:
    return Measured(command).wait(timeout)


def wait_until_answers(url: str, server: Measured, timeout: float = 30) -> None:
    """Poll `url` until it answers 200; fail early if the server exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (finished := server.poll()) is not None:
            raise RuntimeError(f"{url}: the server exited:\n{finished.stderr[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our localhost
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@dataclass(frozen=True, slots=True)
class Ran:
    """A `tracker` command run as an operator runs it, its own process."""

    command: str
    returncode: int
    seconds: float  # wall, start to exit
    cpu_seconds: float  # the whole tree's
    peak_rss_mb: float  # the most its process tree held at once (sampled), or one process's HWM
    largest_process_mb: float  # the largest high-water mark (VmHWM) of one of its processes
    output: str  # its standard output, else its standard error
    errors: str  # the end of its standard error

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def said(self) -> str:
        lines = self.output.strip().splitlines()
        return lines[-1][:300] if lines else ""


def tracker_env(url: str) -> dict[str, str]:
    return {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": "WARNING"}


def tracker(url: str, *args: str, discard_stdout: bool = False) -> Ran:
    """`python -m tracker ARGS` on the database at `url`, sampling its memory while it runs."""
    command = [sys.executable, "-m", "tracker", *args]
    running = Measured(command, tracker_env(url), discard_stdout=discard_stdout)
    peak = largest = 0.0
    while (finished := running.poll()) is None:
        now, high = tree_memory_mb(running.process.pid)
        peak, largest = max(peak, now), max(largest, high)
        time.sleep(MEMORY_EVERY)
    return Ran(
        f"tracker {' '.join(args)}",
        finished.returncode,
        finished.seconds,
        finished.cpu_seconds,
        max(peak, largest),
        largest,
        finished.stdout.strip() or finished.stderr.strip()[-4000:],
        finished.stderr[-4000:],
    )


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


Servers = int | tuple[int, ...] | None  # the server's pid, or each server's; None: no server


class Window:
    """Start before a load run, `end()` after it."""

    def __init__(self, servers: Servers) -> None:
        self.roots = servers if isinstance(servers, tuple) else (servers,)
        self.start = self._sample()

    def _sample(self) -> tuple[float, float | None, float | None, float, float]:
        processes = _processes()

        def cpu(root: int | None) -> float | None:
            if root is None or root not in processes:
                return None
            return sum(processes[pid].cpu for pid in _tree(root, processes))

        used = [cpu(root) for root in self.roots]
        server = None if None in used else sum(u for u in used if u is not None)
        busy, total = _machine()
        return time.monotonic(), server, cpu(_postgres[0]) if _postgres else None, busy, total

    def end(self) -> Usage:
        at0, server0, pg0, busy0, total0 = self.start
        at, server, pg, busy, total = self._sample()

        def percent(start: float | None, end: float | None) -> float | None:
            return None if start is None or end is None else 100 * (end - start) / (at - at0)

        machine = 100 * (busy - busy0) / (total - total0) if total > total0 else 0.0
        return Usage(percent(server0, server), percent(pg0, pg), machine)


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(resident memory of `root` and its descendants now, summed; the largest high-water mark,
    VmHWM, of any one of them)."""
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
            int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK, int(fields[21]) * PAGE
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
