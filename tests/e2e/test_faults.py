"""Faults with real processes: the server SIGKILLed, PostgreSQL restarted, a SIGTERM with requests
in flight, one of two servers lost.

Every test records each 200 (the position it names and the exact bytes sent) and afterwards finds
those bytes at that position in the log: "200 means durable" (DESIGN.md invariant 1) has to hold
through each fault, not only on a quiet day. The numbers each test measures are printed
(`pytest -s`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import aiohttp
import asyncpg
import orjson
import pytest

from testkit.fleet import interleaved, rollout
from testkit.postgres import EmbeddedPostgres
from testkit.server import TrackerProcess
from tests.e2e.conftest import StartTracker
from tracker.store import bodies
from tracker.store.events import APPEND_LOCK

CLIENTS = 32
PATIENCE = 15.0  # the platforms give up on an answer after 15 s; so do our clients
RETRY_PAUSE = 0.1  # a platform retries a failed delivery later; ours soon, to keep the pressure on
QUIET = {"TRACKER_LOG_LEVEL": "WARNING"}  # an access log line per request would slow the load


@dataclass(frozen=True, slots=True)
class Answer:
    """One POST and what came of it; `status` is None when no answer came (reset, refused...)."""

    server: str
    body: bytes
    sent: float  # time.monotonic()
    done: float
    status: int | None
    position: int | None = None
    code: str | None = None  # the JSON error's code, or the transport error's type

    @property
    def seconds(self) -> float:
        return self.done - self.sent


def fleet_bodies(prefix: str, client: int) -> Iterator[bytes]:
    """Endless realistic deliveries for one client. Its streams are its own, sent in order."""
    for round_ in itertools.count():
        scripts = rollout(f"{prefix}-c{client}-r{round_}", 8, tasks=1, seed=client * 1000 + round_)
        yield from interleaved(scripts)


class Load:
    """CLIENTS platform clients posting until the block ends; every answer is recorded.

    Client i posts to `servers[i % len(servers)]`. A failed delivery is sent again after a pause,
    as the platform does; with `failover`, a client that got no answer at all moves on to the
    next server (a load balancer taking a dead backend out).
    """

    def __init__(
        self, servers: list[str], prefix: str, clients: int = CLIENTS, failover: bool = False
    ) -> None:
        self.servers = servers
        self.prefix = prefix
        self.clients = clients
        self.failover = failover
        self.answers: list[Answer] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Future[list[None]] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=PATIENCE),
        )
        self._task = asyncio.gather(*(self._client(i) for i in range(self.clients)))
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopping.set()
        assert self._task is not None
        assert self._session is not None
        try:
            await self._task
        finally:
            await self._session.close()

    async def _client(self, index: int) -> None:
        servers = deque(self.servers)
        servers.rotate(-index)
        bodies = fleet_bodies(self.prefix, index)
        body = next(bodies)
        while not self._stopping.is_set():
            answer = await self._post(servers[0], body)
            self.answers.append(answer)
            if answer.status == 200:
                body = next(bodies)
                continue
            if answer.status is None and self.failover:
                servers.rotate(-1)
            await asyncio.sleep(RETRY_PAUSE)

    async def _post(self, server: str, body: bytes) -> Answer:
        assert self._session is not None
        sent = time.monotonic()
        try:
            async with self._session.post(
                f"{server}/v1/notifications",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                status, payload = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            return Answer(server, body, sent, time.monotonic(), None, code=type(error).__name__)
        done = time.monotonic()
        document = orjson.loads(payload)
        if status == 200:
            return Answer(server, body, sent, done, status, position=document["position"])
        return Answer(server, body, sent, done, status, code=document["error"]["code"])

    def acked(self, since: float = 0.0, server: str | None = None) -> list[Answer]:
        """The 200s answered at or after `since` (by `server`, if given)."""
        return [
            a
            for a in self.answers
            if a.status == 200 and a.done >= since and server in {None, a.server}
        ]

    async def wait_for_acks(
        self, count: int, within: float, since: float = 0.0, server: str | None = None
    ) -> None:
        await wait_until(
            lambda: len(self.acked(since, server)) >= count,
            within,
            f"{count} acks from {server or 'the servers'}",
        )


async def wait_until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.05)


async def assert_acked_are_logged(url: str, answers: list[Answer]) -> tuple[int, int]:
    """Each 200's position holds exactly the bytes sent, and the log holds nothing never sent.

    Returns (acked, logged). Logged rows beyond the acked ones are deliveries that committed
    but whose answer was lost to the fault: the platform sends them again, and a re-delivery is
    harmless (invariant 4).
    """
    acked = [a for a in answers if a.status == 200]
    positions = [a.position for a in acked]
    assert len(set(positions)) == len(positions), "two 200s named the same position"
    conn = await asyncpg.connect(url)
    try:
        await bodies.ready(conn)
        rows = await conn.fetch("SELECT position, raw, codec FROM events")
    finally:
        await conn.close()
    logged = {row["position"]: bodies.unpack(row["codec"], row["raw"]) for row in rows}
    lost = [a.position for a in acked if a.position not in logged]
    assert not lost, f"{len(lost)} acknowledged events are not in the log: {lost[:10]}"
    altered = [a.position for a in acked if logged[a.position] != a.body]
    assert not altered, f"{len(altered)} logged bodies differ from the bytes sent: {altered[:10]}"
    sent = {a.body for a in answers}
    assert all(raw in sent for raw in logged.values()), "the log holds a body nobody sent"
    return len(acked), len(logged)


async def assert_raw_served(server: str, answers: list[Answer], sample: int = 20) -> None:
    """GET /v1/events/{position}/raw gives the bytes back, here for a spread of the 200s."""
    acked = [a for a in answers if a.status == 200]
    async with aiohttp.ClientSession() as session:
        for answer in acked[:: max(1, len(acked) // sample)]:
            async with session.get(f"{server}/v1/events/{answer.position}/raw") as response:
                assert response.status == 200
                assert await response.read() == answer.body, answer.position


def assert_replay_check_is_clean(url: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "replay", "--check"],
        env={**os.environ, "TRACKER_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "check: no drift" in output, output
    return output


def sigkill(tracker: TrackerProcess) -> None:
    assert tracker.process is not None
    tracker.process.send_signal(signal.SIGKILL)
    assert tracker.process.wait(10) == -signal.SIGKILL


async def test_kill_9_under_load_loses_no_acknowledged_event(
    start_tracker: StartTracker, database_url: str
) -> None:
    """A SIGKILL gives no chance to clean up: only what committed may have been answered 200."""
    env = {"TRACKER_DATABASE_URL": database_url, **QUIET}
    first = start_tracker(env)
    async with Load([first.url], "kill") as load:
        await load.wait_for_acks(1000, within=30)
        killed = time.monotonic()
        sigkill(first)
        await wait_until(  # clients meet a closed port before the restart
            lambda: any(a.status is None and a.sent >= killed for a in load.answers),
            10,
            "post refused by the killed server's port",
        )
        second = await asyncio.to_thread(start_tracker, env, first.port)
        restarted = time.monotonic()
        await load.wait_for_acks(1000, within=30, since=restarted)

    statuses = {a.status for a in load.answers}
    assert statuses <= {200, None}, statuses  # the database was up: no 4xx or 5xx at all
    unanswered = [a for a in load.answers if a.status is None]
    assert all(a.done >= killed for a in unanswered), "requests failed before the kill"
    in_flight = sum(a.sent < killed for a in unanswered)
    assert in_flight, "no request was in flight: the kill did not hit the load"
    acked, logged = await assert_acked_are_logged(database_url, load.answers)
    await assert_raw_served(second.url, load.answers)
    output = assert_replay_check_is_clean(database_url)
    print(
        f"\nkill -9: acked {len(load.acked()) - len(load.acked(killed))} before the kill, "
        f"{len(load.acked(restarted))} after the restart ({restarted - killed:.1f} s later); "
        f"{in_flight} posts were in flight at the kill, {len(unanswered) - in_flight} more "
        f"were refused before the restart; "
        f"all {acked} acked found with their bytes; log {logged} rows "
        f"({logged - acked} committed but unanswered)\n{output.strip().splitlines()[-1]}"
    )


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load_answers_503_then_resumes_by_itself(
    start_tracker: StartTracker, stoppable_postgres: EmbeddedPostgres, mode: str
) -> None:
    """While the database is down every answer is a prompt 503 (the platform retries); once it is
    back, ingestion resumes with no restart, and nothing answered 200 is lost, even to an
    immediate shutdown (crash recovery)."""
    url = stoppable_postgres.url
    tracker = start_tracker({"TRACKER_DATABASE_URL": url, **QUIET})
    async with Load([tracker.url], f"pg-{mode}") as load:
        await load.wait_for_acks(500, within=30)
        stopping = time.monotonic()
        await asyncio.to_thread(stoppable_postgres.stop, mode)
        stopped = time.monotonic()
        await asyncio.sleep(3)
        starting = time.monotonic()
        await asyncio.to_thread(stoppable_postgres.start)
        back = time.monotonic()
        await load.wait_for_acks(1, within=15, since=starting)
        await load.wait_for_acks(500, within=30, since=back)

    statuses = {a.status for a in load.answers}
    # never a 500, never no answer, never a hang
    assert statuses <= {200, 503}, f"{statuses}; the server's log:\n{tracker.log()[-6000:]}"
    refused = [a for a in load.answers if a.status == 503]
    assert {a.code for a in refused} == {"database_unavailable"}
    slowest = max(a.seconds for a in refused)
    assert slowest < 10, f"a 503 took {slowest:.1f} s"
    assert max(a.seconds for a in load.answers) < PATIENCE
    outage = [a for a in load.answers if a.sent >= stopped and a.done < starting]
    assert outage, "no request was answered while the database was down"
    assert {a.status for a in outage} == {503}
    first_ack = min(a.done for a in load.acked(starting))
    recovery = first_ack - back
    assert recovery < 5, f"the first 200 came {recovery:.1f} s after the database was back"
    acked, logged = await assert_acked_are_logged(url, load.answers)
    assert_replay_check_is_clean(url)
    after_recovery = [a for a in load.answers if a.sent > first_ack]
    print(
        f"\nPostgreSQL {mode} restart: acked {len(load.acked()) - len(load.acked(stopping))} "
        f"before, {len(load.acked(stopping)) - len(load.acked(back))} during "
        f"(stop took {stopped - stopping:.1f} s, start {back - starting:.1f} s), "
        f"{len(load.acked(back))} after; {len(refused)} answered 503, the slowest in "
        f"{slowest:.2f} s; first 200 {recovery:+.2f} s after the database was back; "
        f"503s after that: {sum(a.status == 503 for a in after_recovery)}; "
        f"all {acked} acked found with their bytes; log {logged} rows"
    )


async def wait_for_queued_appends(tracker: TrackerProcess, url: str, count: int) -> None:
    """Until the server has received `count` posts and its append waits for the held lock."""

    async def received() -> float:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{tracker.url}/metrics") as response,
        ):
            text = await response.text()
        line = next(x for x in text.splitlines() if x.startswith("tracker_notifications_received"))
        return float(line.split()[-1])

    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + 20
        while (
            await received() < count
            or await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'tracker' AND wait_event = 'advisory'"
            )
            == 0
        ):
            assert time.monotonic() < deadline, "the posts never reached the append lock"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def refuses_connections(port: int, within: float) -> float:
    """Seconds until connecting to `port` is refused (the listening socket is closed)."""
    started = time.monotonic()
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return time.monotonic() - started
        writer.close()
        await writer.wait_closed()
        assert time.monotonic() - started < within, f"still accepting after {within} s"
        await asyncio.sleep(0.05)


async def post_once(session: aiohttp.ClientSession, server: str, body: bytes) -> Answer:
    sent = time.monotonic()
    try:
        async with session.post(f"{server}/v1/notifications", data=body) as response:
            status, payload = response.status, await response.read()
    except (aiohttp.ClientError, TimeoutError) as error:
        return Answer(server, body, sent, time.monotonic(), None, code=type(error).__name__)
    position = orjson.loads(payload).get("position") if status == 200 else None
    return Answer(server, body, sent, time.monotonic(), status, position=position)


IN_FLIGHT = 8


async def test_sigterm_stops_accepting_answers_in_flight_requests_and_exits_0(
    start_tracker: StartTracker, database_url: str
) -> None:
    """A graceful stop (a deploy, a scale-in) must neither drop nor fail a delivery in flight."""
    grace = 20.0
    env = {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_SHUTDOWN_GRACE": str(grace),
        "TRACKER_DB_TIMEOUT": "30",  # the held lock must not turn the posts into 503s first
    }
    tracker = start_tracker(env)
    assert tracker.process is not None
    bodies = list(itertools.islice(fleet_bodies("term", 0), IN_FLIGHT))
    blocker = await asyncpg.connect(database_url)
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(PATIENCE)) as session:
            posts = [asyncio.create_task(post_once(session, tracker.url, b)) for b in bodies]
            await wait_for_queued_appends(tracker, database_url, IN_FLIGHT)
            terminated = time.monotonic()
            tracker.process.send_signal(signal.SIGTERM)
            closed_after = await refuses_connections(tracker.port, within=5)
            await asyncio.sleep(0.5)
            assert not any(p.done() for p in posts), "an in-flight request was answered early"
            assert tracker.process.poll() is None, "exited with requests in flight"
            await blocker.execute("SELECT pg_advisory_unlock($1)", APPEND_LOCK)
            released = time.monotonic()
            answers = await asyncio.gather(*posts)
    finally:
        await blocker.close()
    code = await asyncio.to_thread(tracker.process.wait, grace + 10)
    exited = time.monotonic()

    assert [a.status for a in answers] == [200] * IN_FLIGHT, [(a.status, a.code) for a in answers]
    assert code == 0, tracker.log()
    assert exited - terminated < grace
    acked, logged = await assert_acked_are_logged(database_url, answers)
    assert acked == logged == IN_FLIGHT
    print(
        f"\nSIGTERM: stopped accepting {closed_after:.2f} s after the signal; lock released "
        f"{released - terminated:.1f} s after it; {acked} in-flight requests answered 200 within "
        f"{max(a.done for a in answers) - released:.2f} s of the release; exited 0 "
        f"{exited - released:.2f} s after the release ({exited - terminated:.1f} s after "
        f"SIGTERM, grace {grace:.0f} s)"
    )


async def test_a_grace_too_short_for_the_requests_in_flight_still_ends_the_process(
    start_tracker: StartTracker, database_url: str
) -> None:
    """Appends that cannot finish must not keep the process past its grace: the `--workers`
    supervisor and docker-compose's stop_grace_period allow grace + 5 s, then SIGKILL."""
    grace, db_timeout = 1.0, 4.0
    env = {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_SHUTDOWN_GRACE": str(grace),
        "TRACKER_DB_TIMEOUT": str(db_timeout),
    }
    tracker = start_tracker(env)
    assert tracker.process is not None
    bodies = list(itertools.islice(fleet_bodies("short", 0), IN_FLIGHT))
    blocker = await asyncpg.connect(database_url)
    try:
        await blocker.execute("SELECT pg_advisory_lock($1)", APPEND_LOCK)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(PATIENCE)) as session:
            # Two batches: one waiting for the lock, the other queued behind it.
            posts = [asyncio.create_task(post_once(session, tracker.url, bodies[0]))]
            await wait_for_queued_appends(tracker, database_url, 1)
            posts += [asyncio.create_task(post_once(session, tracker.url, b)) for b in bodies[1:]]
            await wait_for_queued_appends(tracker, database_url, IN_FLIGHT)
            terminated = time.monotonic()
            tracker.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(tracker.process.wait, 60)
            exited = time.monotonic()
            answers = await asyncio.gather(*posts)
    finally:
        await blocker.close()

    took = exited - terminated
    print(
        f"\nshort grace ({grace:.0f} s, database timeout {db_timeout:.0f} s, lock never "
        f"released): exited {code} {took:.1f} s after SIGTERM; the {IN_FLIGHT} in-flight "
        f"requests ended {max(a.done for a in answers) - terminated:.1f} s after it with "
        f"{sorted({(a.status, a.code) for a in answers}, key=str)}"
    )
    assert took < grace + 5, f"took {took:.1f} s to stop with a grace of {grace} s"
    assert code == 0  # what the implementation gives: aiohttp's run_app returns normally
    # The lock was never released, and the grace (1 s) ends before the append's own deadline
    # (4 s) could make a 503: the connections are closed at the grace, with no answer.
    assert {a.status for a in answers} == {None}, {(a.status, a.code) for a in answers}
    acked, logged = await assert_acked_are_logged(database_url, answers)
    assert acked == logged == 0


async def test_one_of_two_servers_killed_under_load_the_other_keeps_serving(
    start_tracker: StartTracker, database_url: str
) -> None:
    """Servers share nothing but PostgreSQL: losing one mid-transaction (holding the append
    lock, perhaps) must not stall or fail the other, nor leave the log and projections apart."""
    env = {"TRACKER_DATABASE_URL": database_url, **QUIET}
    doomed, survivor = start_tracker(env), start_tracker(env)
    async with Load([doomed.url, survivor.url], "pair", failover=True) as load:
        await load.wait_for_acks(500, within=30, server=doomed.url)
        await load.wait_for_acks(500, within=30, server=survivor.url)
        killed = time.monotonic()
        sigkill(doomed)
        await load.wait_for_acks(1000, within=30, since=killed, server=survivor.url)

    assert survivor.process is not None
    assert survivor.process.poll() is None
    by_survivor = [a for a in load.answers if a.server == survivor.url]
    assert {a.status for a in by_survivor} == {200}, {(a.status, a.code) for a in by_survivor}
    slowest = max(a.seconds for a in by_survivor if a.done >= killed)
    by_doomed = [a for a in load.answers if a.server == doomed.url]
    assert {a.status for a in by_doomed} <= {200, None}
    assert all(a.done >= killed for a in by_doomed if a.status is None)
    assert any(a.sent < killed for a in by_doomed if a.status is None), "none was in flight"
    acked, logged = await assert_acked_are_logged(database_url, load.answers)
    await assert_raw_served(survivor.url, load.answers)
    assert_replay_check_is_clean(database_url)
    print(
        f"\ntwo servers, one killed: the doomed one acked {len(load.acked(server=doomed.url))}, "
        f"{sum(a.status is None for a in by_doomed)} of its posts got no answer; the survivor "
        f"acked {len(load.acked(server=survivor.url)) - len(load.acked(killed, survivor.url))} "
        f"before the kill and {len(load.acked(killed, survivor.url))} after (slowest "
        f"{slowest:.2f} s), no error; all {acked} acked found with their bytes; "
        f"log {logged} rows ({logged - acked} committed but unanswered)"
    )


async def _on_database(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET default_transaction_read_only = off")  # ours may write
        name = await conn.fetchval("SELECT current_database()")
        for statement in statements:
            await conn.execute(statement.format(db=name))
    finally:
        await conn.close()


TERMINATE_OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = '{db}' AND pid <> pg_backend_pid()
"""


async def test_backends_terminated_under_load_answer_503_and_lose_nothing(
    start_tracker: StartTracker, database_url: str
) -> None:
    """pg_terminate_backend on every connection of the server, five times under load: the posts
    caught get 503 (never a 500), nothing acked is lost, and it recovers with no restart."""
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url, **QUIET})
    async with Load([tracker.url], "term") as load:
        await load.wait_for_acks(300, within=30)
        first_kill = time.monotonic()
        for _ in range(5):
            await _on_database(database_url, TERMINATE_OTHERS)
            await asyncio.sleep(0.3)
        last_kill = time.monotonic()
        await load.wait_for_acks(300, within=30, since=last_kill)

    statuses = {a.status for a in load.answers}
    assert statuses <= {200, 503}, f"{statuses}; the server's log:\n{tracker.log()[-6000:]}"
    refused = [a for a in load.answers if a.status == 503]
    assert {a.code for a in refused} <= {"database_unavailable"}
    acked, logged = await assert_acked_are_logged(database_url, load.answers)
    output = assert_replay_check_is_clean(database_url)
    first_after = min(a.done for a in load.acked(last_kill))
    print(
        f"\npg_terminate_backend x5 under load: {len(load.acked()) - len(load.acked(first_kill))} "
        f"acked before, {len(load.acked(first_kill)) - len(load.acked(last_kill))} between the "
        f"kills, {len(load.acked(last_kill))} after (the first {first_after - last_kill:+.2f} s "
        f"after the last kill); {len(refused)} answered 503; all {acked} acked found with their "
        f"bytes; log {logged} rows\n{output.strip().splitlines()[-1]}"
    )


async def test_a_database_that_refuses_writes_answers_503_then_resumes(
    start_tracker: StartTracker, database_url: str
) -> None:
    """The database turns read-only (as a full disk's guard, or a failover gone wrong, does):
    every post is a prompt 503, nothing is half-stored, and once it takes writes again ingestion
    resumes by itself."""
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url, **QUIET})
    async with Load([tracker.url], "ro") as load:
        await load.wait_for_acks(200, within=30)
        await _on_database(
            database_url,
            'ALTER DATABASE "{db}" SET default_transaction_read_only = on',
            TERMINATE_OTHERS,  # the pool reconnects, read-only
        )
        read_only = time.monotonic()
        await asyncio.sleep(3)
        await _on_database(
            database_url,
            'ALTER DATABASE "{db}" RESET default_transaction_read_only',
            TERMINATE_OTHERS,
        )
        writable = time.monotonic()
        await load.wait_for_acks(200, within=30, since=writable)

    statuses = {a.status for a in load.answers}
    assert statuses <= {200, 503}, f"{statuses}; the server's log:\n{tracker.log()[-6000:]}"
    during = [a for a in load.answers if a.sent >= read_only + 0.5 and a.done < writable]
    assert during, "no post was answered while the database was read-only"
    assert {a.status for a in during} == {503}
    assert max(a.seconds for a in during) < 10
    acked, logged = await assert_acked_are_logged(database_url, load.answers)
    assert_replay_check_is_clean(database_url)
    first_after = min(a.done for a in load.acked(writable))
    print(
        f"\nread-only database for 3 s under load: {len(during)} posts answered 503 meanwhile "
        f"(the slowest in {max(a.seconds for a in during):.2f} s); first 200 "
        f"{first_after - writable:+.2f} s after it took writes again; all {acked} acked found "
        f"with their bytes; log {logged} rows"
    )
