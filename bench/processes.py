"""Child processes whose own CPU time and peak memory we read as they exit.

`os.wait4` returns the resource usage of exactly that child (and the children it reaped), so a
load generator's CPU and a replay's peak RSS are theirs alone, not the whole benchmark's.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Finished:
    returncode: int
    seconds: float  # wall time from start to exit
    cpu_seconds: float  # user + system
    # wait4's ru_maxrss: never below the spawning process's own RSS (Linux seeds it at exec), so
    # not a child's memory when the parent is large; see procfs.tree_memory_mb.
    max_rss_mb: float
    stdout: str
    stderr: str

    def check(self, what: str) -> Finished:
        if self.returncode != 0:
            raise RuntimeError(f"{what} exited with {self.returncode}:\n{self.stderr[-4000:]}")
        return self


class Measured:
    """A running child; `wait()` reaps it with wait4 and returns what it used."""

    def __init__(
        self, command: list[str], env: dict[str, str] | None = None, *, discard_stdout: bool = False
    ) -> None:
        """`discard_stdout`: send its standard output to /dev/null (e.g. `tracker export`)."""
        self._out: IO[bytes] | None = None
        if not discard_stdout:
            self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in wait()
        self._err: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._finished: Finished | None = None
        self.started = time.monotonic()
        stdout = subprocess.DEVNULL if self._out is None else self._out
        self.process = subprocess.Popen(command, stdout=stdout, stderr=self._err, env=env, cwd=ROOT)

    def poll(self) -> Finished | None:
        """What it used if it has exited (reaped here, once), else None.

        Never call `self.process.poll()` or `wait()`: they reap the child and its usage is lost.
        """
        if self._finished is None:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                self.process.returncode = os.waitstatus_to_exitcode(status)
                self._finished = Finished(
                    returncode=self.process.returncode,
                    seconds=time.monotonic() - self.started,
                    cpu_seconds=usage.ru_utime + usage.ru_stime,
                    max_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
                    stdout=self._read(self._out),
                    stderr=self._read(self._err),
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

    @staticmethod
    def _read(file: IO[bytes] | None) -> str:
        if file is None:
            return ""
        file.seek(0)
        text = file.read().decode(errors="replace")
        file.close()
        return text


def run(
    command: list[str], env: dict[str, str] | None = None, timeout: float | None = None
) -> Finished:
    return Measured(command, env).wait(timeout)


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
