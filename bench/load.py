"""Load generators: wrk (closed loop, for the maximum rate) and bench.openloop (a fixed rate).

Both run as their own processes, and their CPU time is reported with every figure, so a reader
can see that the generator was not what limited the rate.
"""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

from bench.processes import Measured, Servers, Usage, Window, run

WRK_THREADS = 1  # one thread drives 64 connections at well over the rates seen here
WRK_TIMEOUT = "30s"  # wrk's default (2 s) would drop slow answers from the latency figures

# Thread k sends to the k-th port, round and round (one wrk run spread over several servers),
# and prepares its requests in `init`; every connection of a thread takes the thread's next
# prepared request, round and round; `done` prints the summary as JSON.
_SCRIPT = Template("""
local thread_count = 0
local headers = {$headers}
local ports = {$ports}

function setup(thread)
  thread:set("thread_index", thread_count)
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[thread_count % #ports + 1])[1]
  end
  thread_count = thread_count + 1
end

function init(args)
  prepared = {}
  local index = 0
  for line in io.lines($lines) do
    $prepare
    index = index + 1
  end
  $cursor
end

function request()
  cursor = cursor % #prepared + 1
  return prepared[cursor]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH_JSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
""")
# POST: each thread prepares every `threads`th line, then sends them in turn from the offset.
_POST = (
    """if index % $threads == thread_index then
      prepared[#prepared + 1] = wrk.format("POST", $path, headers, line)
    end""",
    'cursor = math.floor(tonumber(args[1] or "0") / $threads) % #prepared',
)
# GET $path..line for each line, each thread starting somewhere else in the list.
_GET = (
    'prepared[#prepared + 1] = wrk.format("GET", $path .. line, headers)',
    "cursor = (thread_index * 7919) % #prepared",
)


@dataclass(frozen=True, slots=True)
class Load:
    """One run of a load generator: what it got back, and what it and the others used."""

    generator: str
    connections: int
    seconds: float
    ok: int  # 2xx/3xx answers
    errors: int  # other answers, socket errors, timeouts
    rate: float  # ok answers per second
    p50_ms: float
    p99_ms: float
    generator_cpu_percent: float  # of one core
    cpu: Usage

    def latency(self) -> str:
        return f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms"

    def said(self) -> str:
        errors = f", {self.errors:,} errors" if self.errors else ""
        cpu = f"{self.generator} used {self.generator_cpu_percent:.0f}% of a core"
        return f"{self.rate:,.0f}/s, {self.latency()}{errors}; {cpu}"

    @classmethod
    def in_process(  # noqa: PLR0913 - each argument is one figure of the run
        cls,
        generator: str,
        connections: int,
        latencies: list[float],
        *,
        seconds: float,
        generator_cpu_seconds: float,
        cpu: Usage,
        per: int = 1,
    ) -> Load:
        """A run driven from this process, from its latencies (seconds, one per operation of
        `per` events) and its CPU time; the rate counts events."""
        ordered, ok = sorted(latencies), len(latencies) * per
        p50, p99 = percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000
        cpu_percent = 100 * generator_cpu_seconds / seconds
        return cls(generator, connections, seconds, ok, 0, ok / seconds, p50, p99, cpu_percent, cpu)


def wrk_script(  # noqa: PLR0913 - each argument is a part of the script
    path: Path,
    kind: str,
    lines: Path,
    http_path: str,
    headers: dict[str, str],
    *,
    ports: tuple[int, ...] = (),
) -> Path:
    """A wrk script ("post" or "get"); with `ports`, one thread per port, each sending to its
    own (127.0.0.1)."""
    prepare, cursor = (Template(part) for part in (_POST if kind == "post" else _GET))
    parts = {"threads": len(ports) or WRK_THREADS, "path": _lua(http_path)}
    path.write_text(
        _SCRIPT.substitute(
            headers=", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()),
            ports=", ".join(_lua(str(port)) for port in ports),
            lines=_lua(str(lines)),
            prepare=prepare.substitute(parts),
            cursor=cursor.substitute(parts),
        )
    )
    return path


def _lua(text: str) -> str:
    return json.dumps(text)  # a JSON string of printable ASCII is a valid Lua string


def wrk(  # noqa: PLR0913 - each argument is a knob of the run
    url: str,
    script: Path,
    connections: int,
    seconds: int,
    *,
    pid: Servers,
    offset: int = 0,
    threads: int = WRK_THREADS,
) -> Load:
    """wrk for `seconds`, each connection sending the script's next request; `pid`: the server
    (or servers). `threads`: as many as the script was written for (one per port it spreads)."""
    window = Window(pid)
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--timeout", WRK_TIMEOUT, "-s", str(script), url, "--", str(offset)]
    finished = run(command, timeout=seconds + 120).check("wrk")
    cpu = window.end()
    marker = finished.stdout.rindex("BENCH_JSON ")
    figures = json.loads(finished.stdout[marker + len("BENCH_JSON ") :].splitlines()[0])
    elapsed = figures["duration_us"] / 1e6
    ok = figures["requests"] - figures["status"]
    errors = figures["status"] + sum(figures[k] for k in ("connect", "read", "write", "timeout"))
    return Load(
        f"wrk ({threads} thread{'s' if threads > 1 else ''})",
        connections,
        elapsed,
        ok,
        errors,
        ok / elapsed,
        figures["p50_us"] / 1000,
        figures["p99_us"] / 1000,
        100 * finished.cpu_seconds / finished.seconds,
        cpu,
    )


def open_loop(  # noqa: PLR0913 - each argument is a knob of the run
    port: int | tuple[int, ...],
    bodies: Path,
    rate: float,
    seconds: int,
    *,
    pid: Servers,
    authorization: str = "",
    offset: int = 0,
    connections: int = 64,
    processes: int = 2,
) -> Load:
    """`rate` requests per second from `processes` clients sharing `connections` connections;
    with several ports, client k sends to the k-th (round and round)."""
    ports = port if isinstance(port, tuple) else (port,)
    window = Window(pid)
    clients = [
        Measured(
            [
                *(sys.executable, "-m", "bench.openloop", "--port", str(ports[i % len(ports)])),
                *("--bodies", str(bodies), "--index", str(i), "--stride", str(processes)),
                *("--offset", str(offset), "--rate", str(rate / processes)),
                *("--seconds", str(seconds), "--connections", str(connections // processes)),
                *("--authorization", authorization),
            ]
        )
        for i in range(processes)
    ]
    finished = [client.wait(timeout=seconds + 120).check("open-loop client") for client in clients]
    cpu = window.end()
    tallies = [json.loads(f.stdout) for f in finished]
    latencies = sorted(us for tally in tallies for us in tally["latencies_us"])
    ok = sum(t["ok"] for t in tallies)
    return Load(
        f"open loop ({processes} processes)",
        connections,
        float(seconds),
        ok,
        sum(t["errors"] for t in tallies),
        ok / seconds,
        percentile(latencies, 50) / 1000,
        percentile(latencies, 99) / 1000,
        100 * sum(f.cpu_seconds for f in finished) / seconds,
        cpu,
    )


def percentile(ordered: list[int] | list[float], p: float) -> float:
    if not ordered:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))])


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
