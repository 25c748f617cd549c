"""The consumer, on the event loop: each message through the intake, then settled.

A message is one delivery: its bytes go through `intake` exactly as a POST body does (decode,
validation, the limits of unrecognised bodies, group commit, projections) and are kept byte for
byte; it is settled by settlement.py's rules once that has committed, or once its refusal is
kept. Messages are taken as the links deliver them and appended side by side, so they fill the
group commit's batches; the messages of one stream wait for each other, so each stream's are
applied in the order the queue gave them.

When the database fails, the message is parked, unsettled, with every one that arrives after it;
their credit is not given back, so the broker soon stops sending, and a probe asks the database
until it answers, when the parked messages are taken up again in the order they came. When the
connection drops, the consumer connects again after a backoff with jitter, with a fresh IoTDA
username; whatever was not settled, the broker delivers again (a repeated delivery, harmless:
invariant 4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from functools import partial

from tracker import intake, metrics
from tracker.amqp import settlement
from tracker.amqp.backoff import Backoff
from tracker.amqp.endpoint import Endpoint
from tracker.amqp.link import Connection, Gauges, Message
from tracker.amqp.settlement import Fate
from tracker.config import Settings
from tracker.domain.delivery import NewEvent
from tracker.store import rejected
from tracker.store.database import Database
from tracker.store.errors import Unavailable
from tracker.store.group_commit import GroupCommit

logger = logging.getLogger("tracker.amqp")

OPEN_TIMEOUT = 15.0  # seconds for the connection and its links to open (IoTDA's own limit)
PROBE_FLOOR = 0.25  # seconds before asking a failed database again, doubling up to...
PROBE_CEILING = 5.0


class State(Enum):
    CONNECTING = "connecting"
    OPEN = "open"  # links attached, taking messages
    HELD = "held"  # open, but the database is unavailable: no credit given back
    WAITING = "waiting"  # the connection dropped; connecting again after a backoff
    STOPPED = "stopped"


@dataclass
class Status:
    """What /readyz and /metrics show of the channel."""

    state: State = State.CONNECTING
    since: float = field(default_factory=time.time)
    why: str | None = None  # why the last connection ended
    connections: int = 0  # opened so far
    gauges: Gauges = field(default_factory=Gauges)


class Consumer:
    def __init__(
        self,
        endpoint: Endpoint,
        settings: Settings,
        database: Database,
        appends: GroupCommit,
        backoff: Backoff | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = Status()
        self._settings = settings
        self._database = database
        self._appends = appends
        self._backoff = backoff or Backoff()
        self._sender = intake.Sender(f"amqp {endpoint.url}/{endpoint.address}", "the AMQP source")
        self._connection: Connection | None = None
        self._held = False
        self._stopping = False
        self._probe: asyncio.Task[None] | None = None
        # The last message of each stream still being applied: the next one waits for it.
        self._tails: dict[tuple[str, str], asyncio.Task[Fate]] = {}
        self._running: set[asyncio.Task[Fate]] = set()
        self._parked: list[Message] = []  # unsettled until the database answers
        for outcome in ("accepted", "rejected", "released"):  # shown from the start, as 0
            metrics.AMQP_MESSAGES.labels(outcome)
        # proton logs every reactor event at DEBUG and each connect at INFO; ours say it once.
        level = max(logging.WARNING, logging.getLogger().getEffectiveLevel())
        logging.getLogger("proton").setLevel(level)

    # -- the connection's life

    async def run(self) -> None:
        """Consume until cancelled: connect, take messages, and connect again when it drops."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._set(State.CONNECTING)
            connection = Connection(
                self.endpoint, loop, self._receive, self._settings.max_body_bytes
            )
            self._connection, self.status.gauges = connection, connection.gauges
            connection.start()
            opened_at = time.monotonic()
            why = await self._attend(connection)
            lasted = time.monotonic() - opened_at
            self._connection = None
            self._parked.clear()  # the broker has them back, with every unsettled one
            metrics.AMQP_MESSAGES.labels("released").inc(connection.returned)
            if self._stopping:
                break
            self._backoff.succeeded(lasted if self.status.connections else 0.0)
            delay = self._backoff.next_delay()
            self.status.why = why
            self._set(State.WAITING)
            metrics.AMQP_DROPS.inc()
            logger.warning(
                "AMQP connection to %s ended: %s; connecting again in %.1f s",
                self.endpoint.url,
                why,
                delay,
            )
            await asyncio.sleep(delay)
        self._set(State.STOPPED)

    async def _attend(self, connection: Connection) -> str:
        """Wait for `connection` to open, then until it ends; why it ended."""
        opened, ended = connection.opened, connection.ended
        either: set[asyncio.Future[object]] = {opened, ended}  # type: ignore[arg-type]
        await asyncio.wait(either, timeout=OPEN_TIMEOUT, return_when="FIRST_COMPLETED")
        if not opened.done() and not ended.done():
            connection.close(f"not open within {OPEN_TIMEOUT:.0f} s")
        elif opened.done() and not ended.done():
            self.status.connections += 1
            metrics.AMQP_CONNECTIONS.inc()
            self._set(State.HELD if self._held else State.OPEN)
            logger.info(
                "consuming %s at %s: %d link(s), credit %d each",
                self.endpoint.address,
                self.endpoint.url,
                self.endpoint.links,
                self.endpoint.credit,
            )
        return await asyncio.shield(ended)

    async def stop(self, grace: float) -> None:
        """Take nothing more, let what is being applied finish and be settled (within
        `grace` seconds), then close: the broker puts back whatever is left."""
        self._stopping = True  # from now on, no credit is given back
        connection = self._connection
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        if self._probe is not None:
            self._probe.cancel()
        if connection is not None:
            connection.close("the server is stopping")
            try:
                await asyncio.wait_for(asyncio.shield(connection.ended), grace)
            except TimeoutError:
                logger.warning("the AMQP connection did not close within %.0f s", grace)
        self._set(State.STOPPED)
        logger.info("stopped consuming %s", self.endpoint.address)

    def _set(self, state: State) -> None:
        if self.status.state is not state:
            self.status.state, self.status.since = state, time.time()
        for each in State:
            metrics.AMQP_STATE.labels(each.value).set(1 if each is state else 0)
        self.measure()

    def measure(self) -> None:
        """Copy the links' gauges into /metrics."""
        gauges = self.status.gauges
        metrics.AMQP_LINK.labels("credit").set(gauges.credit)
        metrics.AMQP_LINK.labels("unsettled").set(gauges.unsettled)
        metrics.AMQP_LINK.labels("available").set(
            float("nan") if gauges.available is None else gauges.available
        )

    # -- messages

    def _receive(self, messages: list[Message]) -> None:
        """From the links, in the order they arrived: start applying each one."""
        connection = self._connection
        if connection is None:  # it has ended: the broker delivers them again
            return
        for message in messages:
            if self._stopping:
                continue  # left unsettled: back to the queue when the connection closes
            if self._held:
                self._parked.append(message)
                continue
            self._start(connection, message)

    def _start(self, connection: Connection, message: Message) -> None:
        try:
            examined = self._examine(message)
        except Exception:  # a bug: keep the message where it can be readmitted once fixed
            logger.exception("an AMQP message could not be examined; keeping it in `rejected`")
            examined = _failure(message)
        key = (examined.stream_type, examined.stream_id) if isinstance(examined, NewEvent) else None
        previous = self._tails.get(key) if key is not None else None
        task = asyncio.create_task(self._apply(connection, message, examined, previous))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        if key is not None:
            self._tails[key] = task
            task.add_done_callback(partial(self._forget, key))

    def _examine(self, message: Message) -> NewEvent | intake.Refused:
        if message.body is None:
            too_large = message.problem is not None and "larger" in message.problem
            reason = message.problem or "the AMQP message has no body"
            code = "body_too_large" if too_large else "amqp_body_not_text"
            kept = rejected.Rejection(
                413 if too_large else 400, code, reason, [], message.encoded, too_large
            )
            return intake.Refused(kept)
        if len(message.body) > self._settings.max_body_bytes:
            reason = (
                f"the body is {len(message.body)} bytes, over TRACKER_MAX_BODY_BYTES "
                f"({self._settings.max_body_bytes})"
            )
            return intake.Refused(
                rejected.Rejection(413, "body_too_large", reason, [], message.body)
            )
        return intake.examine(message.body)

    def _forget(self, key: tuple[str, str], done: asyncio.Task[Fate]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    async def _apply(
        self,
        connection: Connection,
        message: Message,
        examined: NewEvent | intake.Refused,
        previous: asyncio.Task[Fate] | None,
    ) -> Fate:
        if previous is not None and settlement.parks_the_next(await _fate_of(previous)):
            return self._park(message)
        received_at = datetime.now(UTC)
        try:
            fate = await self._take(examined, received_at)
        except Unavailable as error:
            self._hold(str(error))
            return self._park(message)
        except Exception:  # a bug: keep the message where it can be readmitted once fixed
            logger.exception("an AMQP message could not be applied; keeping it in `rejected`")
            fate = await self._keep_failure(message, received_at)
        if not settlement.settles(fate):
            return self._park(message)
        return self._settle(connection, message, fate)

    async def _take(self, examined: NewEvent | intake.Refused, received_at: datetime) -> Fate:
        if isinstance(examined, intake.Refused):
            return await self._keep(examined, received_at)
        refused = await intake.admit(self._database, self._settings, examined, self._sender)
        if refused is not None:
            return await self._keep(refused, received_at)
        position = await intake.append(self._appends, examined)
        if isinstance(position, intake.Refused):
            return await self._keep(position, received_at)
        metrics.ACCEPTED.labels(
            examined.event_type if examined.notification else "unrecognised"
        ).inc()
        return Fate.COMMITTED

    async def _keep(self, refused: intake.Refused, received_at: datetime) -> Fate:
        await intake.keep(self._database, self._settings, refused, received_at)
        return Fate.REFUSED

    async def _keep_failure(self, message: Message, received_at: datetime) -> Fate:
        try:
            return await self._keep(_failure(message), received_at)
        except Unavailable as error:
            self._hold(str(error))
            return Fate.PARKED

    def _settle(self, connection: Connection, message: Message, fate: Fate) -> Fate:
        connection.accept(message.number, replenish=settlement.replenish(self._stopping))
        counted = fate.counted_as
        if counted is not None:
            metrics.AMQP_MESSAGES.labels(counted).inc()
        return fate

    def _park(self, message: Message) -> Fate:
        """Hold `message` unsettled until the database answers (settlement.py)."""
        self._parked.append(message)
        return Fate.PARKED

    # -- the database's outages

    def _hold(self, why: str) -> None:
        """The database failed: park what comes until it answers again."""
        if self._held:
            return
        self._held = True
        logger.warning(
            "the database is unavailable (%s): AMQP messages wait unsettled until it answers", why
        )
        self._set(State.HELD)
        self._probe = asyncio.create_task(self._wait_for_database())

    async def _wait_for_database(self) -> None:
        delay = PROBE_FLOOR
        while True:
            await asyncio.sleep(delay)
            try:
                await self._appends.database.fetch("amqp probe", "SELECT 1")
            except Unavailable:
                delay = min(PROBE_CEILING, delay * 2)
                continue
            break
        self._held = False
        parked, self._parked = sorted(self._parked, key=lambda m: m.number), []
        logger.info("the database answers again: taking up %d parked AMQP messages", len(parked))
        connection = self._connection
        if connection is None:
            return  # they belonged to a connection that has ended: the broker has them back
        self._set(State.OPEN)
        for message in parked:
            if self._held or self._stopping:  # failed again meanwhile: park the rest
                self._parked.append(message)
            else:
                self._start(connection, message)


async def _fate_of(previous: asyncio.Task[Fate]) -> Fate:
    """What became of the message before this one in its stream. Its task never fails (every
    error ends in a fate), but if a bug made it, its stream must not stall on it for ever."""
    try:
        return await asyncio.shield(previous)
    except Exception:  # the stream goes on
        logger.exception("applying an AMQP message failed")
        return Fate.REFUSED


def _failure(message: Message) -> intake.Refused:
    """A message the tracker failed on (a bug), to keep in `rejected` rather than lose or loop."""
    raw = message.body if message.body is not None else message.encoded
    reason = "the tracker failed on this message (a bug; see its log); readmit it once fixed"
    return intake.Refused(rejected.Rejection(500, "internal_error", reason, [], raw))
