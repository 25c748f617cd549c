"""`python -m bench guards`: what rollout guards cost ingestion, and what a dead webhook receiver
does to it (issue 25).

One `tracker serve` (tokens set, its defaults, a fresh database), one load: `--clients` closed-
loop clients, each under its own rollout, where a device fails, then succeeds on a second try
(a second sub-operation), then the next device fails...: the rollout's failed count goes 1, 0,
1, 0. `--deliveries` POSTs per phase, keep-alive. Each phase's deliveries
go to an application of their own, which one guard covers (`failed_above: 0`, so in phases 3-5
every delivery fires or resolves an alert, the worst case: in a real rollout a guard changes
a few times, not per delivery):

1. baseline: no guard covers them (the guards' cost is then one read of the guards per batch);
2. quiet: a guard covers them and never fires (`failed_above` a billion): evaluation alone;
3. healthy: every delivery changes an alert; its webhook's receiver answers 200 at once;
4. hanging: the same, and the receiver never answers (TRACKER_WEBHOOK_TIMEOUT 30 s);
5. refused: the same, and nothing listens on the webhook's port (retries with backoff);
6. baseline again, with the hanging and refused receivers' backlogs still pending behind them.

The dead receivers' effect on ingestion is phases 4-5 against phase 3 (same work in the append,
only the receiver differs), and phase 6 against phase 1. Medians and p95 of the clients' latency,
the rate, and the ratio to the baseline (phase 1) of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import aiohttp
import asyncpg
from aiohttp import web

from bench import processes
from bench.postgres import fresh_database, server
from testkit.server import free_port

INGEST, READ, ADMIN = "bench-guards-ingest-0", "bench-guards-read-00", "bench-guards-admin-0"
SIGNING = "bench-guards-webhook-signing"  # the webhooks' HMAC key
PHASES = ("baseline", "quiet", "healthy", "hanging", "refused", "baseline again")


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        return statistics.quantiles(self.latencies, n=20)[18]


class Receivers:
    """`/ok` answers 200 at once, `/hang` never; in a thread of their own, so that the load's
    event loop times only the tracker."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received = {"ok": 0, "hang": 0}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._release: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _close(self) -> None:
        if self._release is not None:
            self._release.set()  # the hanging requests end, and the server with them
        if self._runner is not None:
            await self._runner.cleanup()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._release = asyncio.Event()
        release = self._release

        async def ok(request: web.Request) -> web.Response:
            await request.read()
            self.received["ok"] += 1
            return web.Response()

        async def hang(request: web.Request) -> web.Response:
            await request.read()
            self.received["hang"] += 1
            await release.wait()
            return web.Response()

        app = web.Application()
        app.router.add_post("/ok", ok)
        app.router.add_post("/hang", hang)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()


def _guards(receivers: Receivers) -> dict[str, dict[str, object]]:
    closed = f"http://127.0.0.1:{free_port()}/refused"  # nothing listens there
    base = f"http://127.0.0.1:{receivers.port}"
    flip = {"failed_above": 0}
    return {
        "quiet": {"when": {"failed_above": 10**9}, "webhook": {"url": f"{base}/ok"}},
        "healthy": {"when": flip, "webhook": {"url": f"{base}/ok"}},
        "hanging": {"when": flip, "webhook": {"url": f"{base}/hang"}},
        "refused": {"when": flip, "webhook": {"url": closed}},
    }


async def _put_guards(session: aiohttp.ClientSession, url: str, receivers: Receivers) -> None:
    for name, guard in _guards(receivers).items():
        webhook = {**guard["webhook"], "secret": SIGNING}  # type: ignore[dict-item]
        body = {"scope": {"app_id": f"app-{name}"}, "when": guard["when"], "webhook": webhook}
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with session.put(f"{url}/v1/guards/{name}", json=body, headers=headers) as answer:
            if answer.status != 201:
                raise RuntimeError(f"PUT guard {name}: {answer.status} {await answer.text()}")


async def _phase(
    session: aiohttp.ClientSession, url: str, name: str, clients: int, deliveries: int
) -> Phase:
    app = "app-" + name.replace(" ", "-")
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {INGEST}", "Content-Type": "application/json"}
    per_client = max(1, deliveries // clients)

    async def client(number: int) -> None:
        for n in range(per_client):
            body = {  # a device fails, then succeeds on a second try: the next one fails...
                "notifyType": "swUpgradeResultNotify",
                "deviceId": f"d-{number}-{n // 2}",
                "appId": app,
                "operationId": f"op-{app}-{number}",
                "subOperationId": f"s-{n % 2}",
                "swUpgradeResult": ("FAIL", "SUCCESS")[n % 2],
            }
            started = time.perf_counter()
            async with session.post(
                f"{url}/v1/notifications", data=json.dumps(body), headers=headers
            ) as answer:
                await answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"{name}: {answer.status} {await answer.text()}")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    return Phase(name, time.perf_counter() - started, latencies)


async def _outbox(database_url: str) -> dict[str, dict[str, int]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT secret_ref, state, count(*) AS n FROM webhook_outbox GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    found: dict[str, dict[str, int]] = {}
    for row in rows:
        found.setdefault(row["secret_ref"], {})[row["state"]] = row["n"]
    return found


async def run(
    server_url: str, clients: int, deliveries: int
) -> tuple[list[Phase], dict[str, dict[str, int]]]:
    async with fresh_database(server_url) as database_url:
        port = free_port()
        env = {
            **processes.tracker_env(database_url),
            "TRACKER_INGEST_TOKEN": INGEST,
            "TRACKER_READ_TOKEN": READ,
            "TRACKER_ADMIN_TOKEN": ADMIN,
            "TRACKER_WEBHOOK_HOSTS": "127.0.0.1",
            "TRACKER_WEBHOOK_TIMEOUT": "30",
        }
        command = [
            sys.executable,
            "-m",
            "tracker",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        tracker = processes.Measured(command, env)
        url = f"http://127.0.0.1:{port}"
        try:
            processes.wait_until_answers(f"{url}/healthz", tracker)
            with Receivers() as receivers:
                connector = aiohttp.TCPConnector(limit=clients)
                async with aiohttp.ClientSession(connector=connector) as session:
                    await _put_guards(session, url, receivers)
                    await _phase(session, url, "warm up", clients, min(deliveries, 200))
                    phases = []
                    for name in PHASES:
                        print(
                            f"guards: {name}, {deliveries:,} deliveries",
                            file=sys.stderr,
                            flush=True,
                        )
                        phases.append(await _phase(session, url, name, clients, deliveries))
                outbox = await _outbox(database_url)
        finally:
            tracker.process.terminate()
            tracker.wait(60)
    return phases, outbox


def table(phases: list[Phase]) -> str:
    base = phases[0]
    lines = [
        "| phase | deliveries/s | p50 ms | p95 ms | p50 vs baseline | rate vs baseline |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {p.name} | {p.rate:,.0f} | {p.p50 * 1000:.2f} | {p.p95 * 1000:.2f} | "
        f"{p.p50 / base.p50:.2f} | {p.rate / base.rate:.2f} |"
        for p in phases
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench guards", description=__doc__)
    parser.add_argument("--deliveries", type=int, help="POSTs per phase (4,000; smoke 80)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run (CI)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    deliveries = args.deliveries or (80 if args.smoke else 4000)
    with server() as (url, origin):
        print(f"PostgreSQL: {origin}", file=sys.stderr)
        phases, outbox = asyncio.run(run(url, args.clients, deliveries))
    print(table(phases))
    print(
        "\nwebhooks at the end, by guard and state: "
        + "; ".join(f"{g} {dict(sorted(s.items()))}" for g, s in sorted(outbox.items()))
    )
    print(f"cores: {os.cpu_count()}; clients: {args.clients}; deliveries per phase: {deliveries:,}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "phases": [
                        {"phase": p.name, "rate": p.rate, "p50": p.p50, "p95": p.p95}
                        for p in phases
                    ],
                    "outbox": outbox,
                },
                indent=2,
            )
        )
    return 0
