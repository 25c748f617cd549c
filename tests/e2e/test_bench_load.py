"""The benchmark's load generators against its bare HTTP server: a few seconds, no database.

`python -m bench --smoke` runs every measurement end to end; this only guards the parts most
likely to break quietly (the generated wrk script, its JSON summary, the open-loop client).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.load import open_loop, wrk, wrk_script
from bench.processes import Measured, wait_until_answers
from testkit import fleet
from testkit.server import free_port
from tests.support.tools import required


@pytest.fixture
def wrk_on_path() -> str:
    """wrk drives the benchmark's load; without it (a newcomer's machine) its tests skip, under
    CI they fail (tests/support/tools.py)."""
    return required("wrk", install="apt-get install -y wrk")


@pytest.fixture
def bare_server() -> Iterator[tuple[int, int]]:
    yield from _bare_server()


@pytest.fixture
def other_bare_server() -> Iterator[tuple[int, int]]:
    yield from _bare_server()


def _bare_server() -> Iterator[tuple[int, int]]:
    port = free_port()
    server = Measured([sys.executable, "-m", "bench.bare_http", "--port", str(port)])
    try:
        wait_until_answers(f"http://127.0.0.1:{port}/healthz", server)
        yield port, server.process.pid
    finally:
        if server.poll() is None:
            server.process.send_signal(signal.SIGINT)
        server.wait(timeout=10)


@pytest.fixture
def bodies(tmp_path: Path) -> Path:
    return fleet.write_lines(tmp_path / "bodies.jsonl", fleet.deliveries(2_000, "t"))


def test_open_loop_sends_at_the_rate_asked(bare_server: tuple[int, int], bodies: Path) -> None:
    port, pid = bare_server
    load = open_loop(port, bodies, rate=400, seconds=1, pid=pid, connections=8)
    assert (load.ok, load.errors) == (400, 0)
    assert 0 < load.p50_ms <= load.p99_ms < 1000
    assert load.generator_cpu_percent > 0


@pytest.mark.usefixtures("wrk_on_path")
def test_wrk_posts_the_bodies_and_reports_json(
    bare_server: tuple[int, int], bodies: Path, tmp_path: Path
) -> None:
    port, pid = bare_server
    script = wrk_script(tmp_path / "post.lua", "post", bodies, "/v1/notifications", {})
    load = wrk(f"http://127.0.0.1:{port}", script, 4, 1, pid=pid, offset=100)
    assert load.ok > 100
    assert load.errors == 0
    assert 0 < load.p50_ms <= load.p99_ms


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


@pytest.mark.usefixtures("wrk_on_path")
def test_one_wrk_run_spreads_over_two_servers(
    bare_server: tuple[int, int],
    other_bare_server: tuple[int, int],
    bodies: Path,
    tmp_path: Path,
) -> None:
    servers = (bare_server, other_bare_server)
    ports = tuple(port for port, _ in servers)
    pids = tuple(pid for _, pid in servers)
    script = wrk_script(
        tmp_path / "spread.lua", "post", bodies, "/v1/notifications", {}, ports=ports
    )
    before = [cpu_ticks(pid) for pid in pids]
    load = wrk(f"http://127.0.0.1:{ports[0]}", script, 8, 1, pid=pids, threads=2)
    assert load.ok > 100
    assert load.errors == 0
    assert all(cpu_ticks(pid) > was for pid, was in zip(pids, before, strict=True))
    assert load.cpu.server_percent is not None
