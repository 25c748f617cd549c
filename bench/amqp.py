"""The AMQP channel: a backlog pre-loaded into a RabbitMQ queue, drained by one `tracker serve`.

IoTDA's queue keeps what the tracker has not yet taken, so after an outage the tracker meets a
backlog, and the issue's targets are about that: the backlog drains faster than HTTP ingest of
the same bodies (no HTTP per message), the machine is busy while it drains (the CPU, not a
serial section, is the limit), and the consumer's memory does not grow with the backlog (link
credit bounds what is in flight).

For each size (10,000 and `--amqp-messages`, 1,000,000 by default): a fresh durable queue, the
fleet mix of the HTTP ingest measurement (`testkit/fleet.py`, interleaved across devices) pre-
loaded through pika (AMQP 0-9-1) as persistent messages with publisher confirms, a window of
unconfirmed messages in flight; then one `tracker serve` on a fresh database consumes the queue
over AMQP 1.0 (RabbitMQ's plugin, `/amq/queue/NAME`; one link, the default credit). The drain is
timed from the first commit (the log's first row, polled) to every message being kept: the log
holds as many rows, and the server has accepted (or rejected, once kept) as many messages (a
message delivered again after a dropped connection may be in the log twice). The queue is
checked empty once the server has stopped (whatever it had not settled would be back in the
queue then), and deleted. Meanwhile the tracker's resident memory (VmRSS) is sampled, and
the CPU of the server, PostgreSQL, the broker and the machine is taken over the drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from bench import ingest
from bench.load import Load, median, wrk
from bench.postgres import connected, count_events, fresh_database
from bench.processes import PROC, TICK, Window
from bench.report import Line, met
from testkit.server import TrackerProcess
from tracker.config import Settings
from tracker.domain.delivery import NewEvent, decode

try:  # the `bench` extra's; without it the row is skipped with a note
    import pika
    from pika.channel import Channel
    from pika.frame import Method
    from pika.spec import Basic, Queue
except ImportError:  # pragma: no cover - said by `unavailable()`
    pika = None  # type: ignore[assignment]

# A RabbitMQ with its AMQP 1.0 plugin (user and password in the URL); no path: the vhost is "/".
BROKER = os.environ.get("TRACKER_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
SMALL, SMOKE_SMALL, SMOKE_LARGE, LARGE = 10_000, 2_000, 4_000, 1_000_000
FASTER = 1.5  # the least drain rate over the HTTP ingest rate of the same server (issue 23)
BUSY = 90.0  # % of the machine busy while draining
FLAT = 0.10  # the consumer's RSS at the large backlog within ±10% of its RSS at the small one
WINDOW = 5_000  # published messages not yet confirmed, at most
POLL = 0.05  # seconds between looks at the log and at the tracker's memory
FIRST_COMMIT_WITHIN = 120.0  # seconds from starting the server to its first commit, at most
STALL = 120.0  # seconds without a new row in the log before the drain is given up
AMQP_10_HEADER = b"AMQP\x03\x01\x00\x00"  # AMQP 1.0's protocol header for its SASL layer
CREDIT = Settings().amqp_credit  # per link, the default `tracker serve` is run with here
CHAINED_SAMPLE = 50_000  # bodies of the backlog looked at for how many wait on their stream


@dataclass(frozen=True, slots=True)
class Drain:
    """One backlog: pre-loaded, then drained by one `tracker serve`."""

    messages: int
    preload_seconds: float  # publishing with confirms, until the last one was confirmed
    blocked: bool  # RabbitMQ blocked the publisher (a memory or disk alarm) while pre-loading
    broker_rss_mb: float | None  # RabbitMQ's (beam.smp) once the backlog was loaded
    startup_seconds: float  # from starting `tracker serve` to its first commit
    seconds: float  # from the first commit to every message kept (in the log, and settled)
    logged: int  # rows in the log at the end
    left: int  # messages in the queue once the server had stopped (ready: none unacked then)
    outcomes: dict[str, float]  # tracker_amqp_messages_total by outcome, at the end
    rss_peak_mb: float  # the tracker's largest VmRSS sampled while draining
    rss_median_mb: float  # and the median of the samples
    load_average: tuple[float, float, float]  # the machine's, just before the drain
    load: Load  # the drain as a load run, for the CPU table; its "generator" is the broker
    warnings: tuple[int, list[str]] = (0, [])  # the server's warnings and errors: count, first
    stalled: str | None = None  # why the drain was given up, if it was

    @property
    def rate(self) -> float:
        """Messages drained per second (the log's rows, while it holds fewer than queued)."""
        return min(self.logged, self.messages) / self.seconds if self.seconds else 0.0

    @property
    def preload_rate(self) -> float:
        return self.messages / self.preload_seconds if self.preload_seconds else 0.0

    def said(self) -> str:
        drained = min(self.logged, self.messages)
        return (
            f"{self.rate:,.0f} messages/s ({drained:,} in {self.seconds:.1f} s, from the "
            f"first commit, {self.startup_seconds:.1f} s after start)"
        )


@dataclass
class Amqp:
    """The `amqp` row: two backlogs, and the HTTP ingest rate they are held against."""

    small: Drain
    large: Drain
    http: Load  # the HTTP ingest of the same server setup, in this run
    http_source: str  # where that figure comes from
    smoke: bool
    chained: float  # the share of the backlog's messages queued behind their stream (`chained`)

    @property
    def ratio(self) -> float:
        return self.large.rate / self.http.rate if self.http.rate else float("nan")

    @property
    def rss_ratio(self) -> float:
        small = self.small.rss_peak_mb
        return self.large.rss_peak_mb / small if small else float("nan")

    def loads(self) -> list[tuple[str, Load]]:
        named = [(f"amqp drain, {d.messages:,} queued", d.load) for d in (self.small, self.large)]
        return named + ([("amqp: HTTP ingest beside it", self.http)] if self.measured_http else [])

    @property
    def measured_http(self) -> bool:
        return self.http_source == HTTP_HERE

    def lines(self) -> list[Line]:
        smoke, large, small = "n/a (smoke)" if self.smoke else None, self.large, self.small
        cpu, http = large.load.cpu, f"{self.http.rate:,.0f}/s ({self.http_source})"
        server, pg = (
            "-" if x is None else f"{x:.0f}%" for x in (cpu.server_percent, cpu.postgres_percent)
        )
        broker = _percent(large.load.generator_cpu_percent)
        small_ratio = small.rate / self.http.rate if self.http.rate else float("nan")
        return [
            Line(
                f"amqp drain, {large.messages:,} queued vs HTTP ingest (same server)",
                large.said(),
                http,
                f"{self.ratio:.2f}",
                f"≥ {FASTER:g}",
                smoke or met(self.ratio >= FASTER and not large.stalled, large.stalled or ""),
            ),
            Line(
                f"amqp drain, {small.messages:,} queued vs HTTP ingest",
                small.said(),
                f"{self.http.rate:,.0f}/s",
                f"{small_ratio:.2f}",
                "(info)",
            ),
            Line(
                f"amqp drain, {large.messages:,} queued: machine busy",
                f"{cpu.machine_busy_percent:.0f}% of all cores (server {server}, "
                f"PostgreSQL {pg}, RabbitMQ {broker} of a core)",
                target=f"≥ {BUSY:.0f}%",
                met=smoke or met(cpu.machine_busy_percent >= BUSY),
            ),
            Line(
                f"amqp consumer RSS, {small.messages:,} → {large.messages:,} queued",
                f"{small.rss_peak_mb:.0f} → {large.rss_peak_mb:.0f} MB (peak while draining; "
                f"medians {small.rss_median_mb:.0f} → {large.rss_median_mb:.0f} MB)",
                ratio=f"{self.rss_ratio:.2f}",
                target=f"{1 - FLAT:.2f}-{1 + FLAT:.2f}",
                met=smoke or met(abs(self.rss_ratio - 1) <= FLAT),
            ),
        ]

    def notes(self) -> list[str]:
        out = []
        for d in (self.small, self.large):
            broker = f"{d.broker_rss_mb:,.0f} MB" if d.broker_rss_mb else "not seen (not local)"
            load = ", ".join(f"{x:.2f}" for x in d.load_average)
            out.append(
                f"amqp, {d.messages:,} queued: pre-loaded through pika (persistent, confirms, "
                f"{WINDOW:,} unconfirmed at most) in {d.preload_seconds:.1f} s "
                f"({d.preload_rate:,.0f}/s); RabbitMQ's RSS then {broker}; load average just "
                f"before the drain {load}; {_other(d.load)}"
            )
            if d.blocked:
                out.append(
                    f"amqp, {d.messages:,} queued: RabbitMQ blocked the publisher while it was "
                    "pre-loading (a memory or disk alarm): the pre-load time includes the wait"
                )
            if d.stalled:
                out.append(f"amqp, {d.messages:,} queued: {d.stalled}")
            if d.left or d.logged < d.messages:
                out.append(
                    f"amqp, {d.messages:,} queued: the log holds {d.logged:,} rows and "
                    f"{d.left:,} messages were left in the queue"
                )
            elif d.logged > d.messages:
                out.append(
                    f"amqp, {d.messages:,} queued: the log holds {d.logged - d.messages:,} rows "
                    "more than messages were queued: messages delivered again once committed "
                    "(a connection ended before their acceptance reached the broker), each a "
                    "repeated delivery, as a platform's retry over HTTP"
                )
            if d.warnings[0]:
                said = " | ".join(d.warnings[1])
                out.append(
                    f"amqp, {d.messages:,} queued: the server logged {d.warnings[0]:,} "
                    f"warning(s) or error(s), first: {said}"
                )
            odd = {k: v for k, v in d.outcomes.items() if k != "accepted" and v}
            if odd:
                out.append(
                    f"amqp, {d.messages:,} queued: besides accepted, {odd} (released: "
                    "unsettled when their connection ended, so the broker delivered them again)"
                )
        out.append(
            "amqp: the consumer applies each stream's messages in the order the queue gave them, "
            "so a message whose stream has an earlier one in flight waits for that one's commit. "
            f"In this backlog (the fleet mix, interleaved across 500 devices and 20 tasks a "
            f"rollout, fewer towards a rollout's end) {100 * self.chained:.0f}% of the messages "
            f"have an earlier message of their stream among the {CREDIT} before them (one link's "
            "credit); a backlog concentrated on fewer streams drains slower still, one that "
            "spreads wider faster"
        )
        return out


HTTP_HERE = "wrk beside it, same bodies"


def _percent(value: float) -> str:
    return "-" if value != value else f"{value:.0f}%"  # noqa: PLR0124 - nan: not measured


def _other(load: Load) -> str:
    """The CPU the machine spent outside the server, PostgreSQL and the broker over a drain."""
    cores = os.cpu_count() or 1
    known = [load.cpu.server_percent, load.cpu.postgres_percent, load.generator_cpu_percent]
    if any(x is None or x != x for x in known):  # noqa: PLR0124 - nan
        return "CPU outside the server, PostgreSQL and RabbitMQ: not known"
    rest = load.cpu.machine_busy_percent * cores - sum(x for x in known if x is not None)
    return (
        f"CPU outside the server, PostgreSQL and RabbitMQ while draining: {max(rest, 0):.0f}% "
        "of a core (this benchmark's polling, and anything else running)"
    )


def chained(bodies: Path, window: int = CREDIT, sample: int = CHAINED_SAMPLE) -> float:
    """The share of the first `sample` bodies that have an earlier body of their stream among
    the `window` before them: those a consumer keeping each stream's order holds back until
    that one has committed, when `window` messages are in flight."""
    recent: deque[tuple[str, str] | None] = deque()
    counts: Counter[tuple[str, str] | None] = Counter()
    behind = seen = 0
    with bodies.open("rb") as lines:
        for line in lines:
            if seen >= sample:
                break
            event = decode(line.rstrip(b"\n"))
            stream = (event.stream_type, event.stream_id) if isinstance(event, NewEvent) else None
            behind += stream is not None and counts[stream] > 0
            seen += 1
            recent.append(stream)
            counts[stream] += 1
            if len(recent) > window:
                counts[recent.popleft()] -= 1
    return behind / seen if seen else 0.0


# -- is it there?


def unavailable() -> str | None:
    """Why the row cannot run here (one sentence, the note that replaces it), or None."""
    needed = (("pika", "pika"), ("python-qpid-proton", "proton"))
    missing = [name for name, module in needed if find_spec(module) is None]
    if missing or pika is None:
        return (
            f"amqp: skipped: {' and '.join(missing) or 'pika'} not installed "
            "(`pip install -e '.[bench]'` installs both)"
        )
    parts = urlsplit(BROKER)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=3) as sock:
            sock.settimeout(3)
            sock.sendall(AMQP_10_HEADER)
            answer = sock.recv(8)
    except OSError as error:
        return f"amqp: skipped: no AMQP broker at {host}:{port} ({error}; TRACKER_BENCH_AMQP_URL)"
    if answer != AMQP_10_HEADER:
        return (
            f"amqp: skipped: the broker at {host}:{port} does not speak AMQP 1.0 (it answered "
            f"{answer!r}); on RabbitMQ: rabbitmq-plugins enable rabbitmq_amqp1_0"
        )
    try:
        _queue_count(f"tracker-bench-probe-{secrets.token_hex(4)}", declare=True, delete=True)
    except Exception as error:  # noqa: BLE001 - any failure to log in and declare: say it, skip
        return f"amqp: skipped: no queue can be declared at {host}:{port} over AMQP 0-9-1: {error}"
    return None


def _queue_count(queue: str, *, declare: bool = False, delete: bool = False) -> int:
    """The messages ready in `queue` (declaring it durable first, or deleting it after)."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    try:
        channel = connection.channel()
        declared = channel.queue_declare(queue, passive=not declare, durable=True)
        count: int = declared.method.message_count
        if delete:
            channel.queue_delete(queue)
        return count
    finally:
        connection.close()


def _delete(queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    try:
        connection.channel().queue_delete(queue)
    finally:
        connection.close()


# -- the pre-load


class _Publisher:
    """Publishes the first `total` lines of a file to `queue` (declared durable), persistent,
    with publisher confirms: at most WINDOW unconfirmed; `run()` returns once the broker has
    confirmed every one (True if it blocked the publisher meanwhile)."""

    def __init__(self, queue: str, bodies: Path, total: int) -> None:
        self.queue, self.total, self.bodies = queue, total, bodies.open("rb")
        self.sent, self.floor, self.pending = 0, 1, set[int]()
        self.blocked, self.error = False, ""
        self.channel: Channel | None = None
        self.properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent, content_type="application/json"
        )
        self.connection = pika.SelectConnection(
            pika.URLParameters(BROKER),
            on_open_callback=lambda c: c.channel(on_open_callback=self._channel_opened),
            on_open_error_callback=lambda _, e: self._fail(f"cannot connect: {e}"),
            on_close_callback=lambda c, _: c.ioloop.stop(),
        )
        self.connection.add_on_connection_blocked_callback(lambda *_: self._block())

    def run(self) -> bool:
        try:
            self.connection.ioloop.start()
        finally:
            self.bodies.close()
        if self.error or self.pending or self.sent < self.total:
            why = self.error or f"{self.sent - len(self.pending):,} of {self.total:,} confirmed"
            raise RuntimeError(f"pre-loading {self.queue} failed: {why}")
        return self.blocked

    def _block(self) -> None:
        self.blocked = True

    def _fail(self, why: str) -> None:
        self.error = self.error or why
        if self.connection.is_open:
            self.connection.close()
        else:
            self.connection.ioloop.stop()

    def _channel_opened(self, channel: Channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(lambda _, e: self._channel_closed(e))
        channel.queue_declare(self.queue, durable=True, callback=self._declared)

    def _channel_closed(self, why: Exception) -> None:
        if self.pending or self.sent < self.total:  # else: closed with the connection, done
            self._fail(f"the channel closed: {why}")

    def _declared(self, _: Method[Queue.DeclareOk]) -> None:
        assert self.channel is not None  # noqa: S101 - declared on it
        self.channel.confirm_delivery(self._confirmed, callback=lambda _: self._publish())

    def _publish(self) -> None:
        assert self.channel is not None  # noqa: S101 - confirming on it
        while self.sent < self.total and len(self.pending) < WINDOW:
            line = self.bodies.readline()
            if not line:
                self._fail(f"the bodies file ended after {self.sent:,} lines")
                return
            self.channel.basic_publish("", self.queue, line.rstrip(b"\n"), self.properties)
            self.sent += 1
            self.pending.add(self.sent)

    def _confirmed(self, frame: Method[Basic.Ack | Basic.Nack]) -> None:
        method = frame.method
        if isinstance(method, Basic.Nack):
            self._fail(f"the broker refused message {method.delivery_tag} (nack)")
            return
        if method.multiple:
            self.pending.difference_update(range(self.floor, method.delivery_tag + 1))
            self.floor = max(self.floor, method.delivery_tag + 1)
        else:
            self.pending.discard(method.delivery_tag)
        if self.sent == self.total and not self.pending:
            self.connection.close()
        else:
            self._publish()


# -- the drain


async def drain(server_url: str, bodies: Path, messages: int, workdir: Path) -> Drain:
    """`messages` of `bodies` pre-loaded into a fresh queue, drained by one `tracker serve` on
    a fresh database; the queue is deleted afterwards."""
    queue = f"tracker-bench-{secrets.token_hex(4)}"
    try:
        started = time.monotonic()
        blocked = await asyncio.to_thread(_Publisher(queue, bodies, messages).run)
        preloaded = time.monotonic() - started, blocked, _broker_rss_mb()
        print(
            f"  pre-loaded {messages:,} messages in {preloaded[0]:.1f} s "
            f"({messages / preloaded[0]:,.0f}/s)",
            flush=True,
        )
        async with fresh_database(server_url) as url:
            return await _consume(url, queue, messages, preloaded, workdir)
    finally:
        await asyncio.to_thread(_delete, queue)


async def _consume(
    url: str,
    queue: str,
    messages: int,
    preloaded: tuple[float, bool, float | None],
    workdir: Path,
) -> Drain:
    env = {
        "TRACKER_DATABASE_URL": url,
        "TRACKER_INGEST_TOKEN": ingest.INGEST_TOKEN,
        "TRACKER_READ_TOKEN": ingest.READ_TOKEN,
        "TRACKER_AMQP_URL": BROKER,
        "TRACKER_AMQP_ADDRESS": f"/amq/queue/{queue}",
    }
    server = TrackerProcess(env, workdir / f"tracker-amqp-{messages}.log")
    load_average = os.getloadavg()
    async with connected(url) as conn:
        starting = time.monotonic()
        start = asyncio.create_task(asyncio.to_thread(server.start))
        try:
            while not await conn.fetchval("SELECT max(position) FROM events"):
                if start.done() and start.exception() is not None:
                    await start  # raises why it did not start
                if why := _exited(server):
                    raise RuntimeError(why)
                if time.monotonic() - starting > FIRST_COMMIT_WITHIN:
                    raise RuntimeError(f"no commit {FIRST_COMMIT_WITHIN:.0f} s after start")
                await asyncio.sleep(0.005)
            first = time.monotonic()
            assert server.process is not None  # noqa: S101 - it has committed
            pid, broker = server.process.pid, _broker_pid()
            window, broker_cpu = Window(pid), _cpu_seconds(broker)
            samples, stalled = await _until_logged(conn, server, messages)
            seconds = time.monotonic() - first
            cpu, broker_used = window.end(), _cpu_seconds(broker)
            await start  # answered /healthz long ago
            # Only from our own server: another may answer on its port once it has exited.
            outcomes = {} if _exited(server) else await asyncio.to_thread(_outcomes, server.url)
        finally:
            if not start.done():
                with contextlib.suppress(Exception):
                    await start
            await asyncio.to_thread(server.close)
    logged = await count_events(url)
    left = await asyncio.to_thread(_queue_count, queue)
    warnings = _warnings(server.log())
    broker_percent = (
        float("nan")
        if broker_cpu is None or broker_used is None
        else 100 * (broker_used - broker_cpu) / seconds
    )
    ordered = sorted(samples)
    load = Load(
        "RabbitMQ (AMQP 1.0, one link)",
        1,
        seconds,
        logged,
        0,  # not requests: what was not accepted at once is in the notes
        logged / seconds,
        float("nan"),
        float("nan"),
        broker_percent,
        cpu,
    )
    return Drain(
        messages,
        *preloaded,
        startup_seconds=first - starting,
        seconds=seconds,
        logged=logged,
        left=left,
        outcomes=outcomes,
        rss_peak_mb=ordered[-1] if ordered else float("nan"),
        rss_median_mb=median(ordered),
        load_average=load_average,
        load=load,
        warnings=warnings,
        stalled=stalled,
    )


def _warnings(log: str, first: int = 3) -> tuple[int, list[str]]:
    """The server log's warnings and errors: how many, and the first few (shortened)."""
    found = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    return len(found), [line[:240] for line in found[:first]]


def _exited(server: TrackerProcess) -> str | None:
    """Why the server is no longer running (its exit code and last words), or None. Checked
    while draining: /healthz may be answered by another process that took its port (its
    port is free when chosen, and taken only when the server binds it, after the consumer has
    started), and a drain that stops must say why."""
    code = server.process.poll() if server.process else None
    if code is None:
        return None
    said = server.log().strip().splitlines()
    return f"tracker serve exited with {code} while draining: {said[-1][:300] if said else ''}"


async def _until_logged(
    conn: asyncpg.Connection, server: TrackerProcess, messages: int
) -> tuple[list[float], str | None]:
    """Poll the log until it holds `messages` rows, sampling the tracker's RSS meanwhile;
    (the samples in MB, why it was given up if it was)."""
    assert server.process is not None  # noqa: S101 - started
    samples: list[float] = []
    top, grew_at, pid = 0, time.monotonic(), server.process.pid
    while True:
        if why := _exited(server):
            return samples, why
        if (rss := _rss_mb(pid)) is not None:
            samples.append(rss)
        now = int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        if (
            now >= messages
            and int(await conn.fetchval("SELECT count(*) FROM events")) >= messages
            and await asyncio.to_thread(_settled, server.url) >= messages
        ):
            return samples, None
        if now > top:
            top, grew_at = now, time.monotonic()
        elif time.monotonic() - grew_at > STALL:
            return samples, f"the drain stalled: no new row for {STALL:.0f} s at {top:,}"
        await asyncio.sleep(POLL)


def _settled(base: str) -> float:
    """Messages settled for good (accepted, or rejected once kept): the queue is empty when all
    of them are. Asked only once the log holds as many rows, since a message delivered again
    after a dropped connection may be in the log twice."""
    outcomes = _outcomes(base)
    return outcomes.get("accepted", 0.0) + outcomes.get("rejected", 0.0)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def _broker_pid() -> int | None:
    """The process listening on the broker's port, if the broker runs on this machine (another
    RabbitMQ, e.g. a test's private one, may run beside it)."""
    parts = urlsplit(BROKER)
    if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None
    port = f"{parts.port or 5672:04X}"
    sockets = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for row in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = row.split()  # local address (hex ip:port) 1, state 3 (0A: listen), inode 9
                if fields[1].endswith(f":{port}") and fields[3] == "0A":
                    sockets.add(f"socket:[{fields[9]}]")
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(str(fd.readlink()) in sockets for fd in (entry / "fd").iterdir()):
                    return int(entry.name)
    return None


def _broker_rss_mb() -> float | None:
    pid = _broker_pid()
    return None if pid is None else _rss_mb(pid)


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of one process, all its threads."""
    if pid is None:
        return None
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _outcomes(base: str) -> dict[str, float]:
    """tracker_amqp_messages_total by outcome, from the server's /metrics."""
    request = urllib.request.Request(  # noqa: S310 - our own localhost server
        f"{base}/metrics", headers=ingest.READ_HEADERS
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    found = re.findall(
        r'^tracker_amqp_messages_total\{outcome="(\w+)"\} (\S+)$', text, re.MULTILINE
    )
    return {outcome: float(value) for outcome, value in found}


# -- HTTP beside it


async def http_ingest(
    server_url: str, post: Path, timing: tuple[int, int], workdir: Path, connections: int
) -> Load:
    """The HTTP ingest of the same server setup when the ingest row did not run: wrk posting
    the same fleet mix to one `tracker serve` on a fresh database (warm-up, then the run)."""
    seconds, warmup = timing
    async with (
        fresh_database(server_url) as url,
        ingest.serving(url, workdir / "tracker-amqp-http.log") as server,
    ):
        load = (server.url, post, connections)
        warm = await asyncio.to_thread(wrk, *load, warmup, pid=ingest.pid(server))
        sent = warm.ok + warm.errors
        return await asyncio.to_thread(wrk, *load, seconds, pid=ingest.pid(server), offset=sent)
