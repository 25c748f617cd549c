"""The AMQP client on a thread of its own: one connection, its receiver links, nothing more.

proton's reactor is not asyncio, so it runs here, and meets the event loop in two places only,
each batched: messages go to the loop by `call_soon_threadsafe`, as bytes and a number (no
proton object ever leaves this thread: proton is not thread-safe), and acceptances and the order
to close come back through an `EventInjector`, which wakes the reactor.

Credit is the bound on memory: a link is given credit only up to `credit` messages unsettled,
so however long the queue's backlog, about that many are in flight (`_top_up`). Each
connection is built afresh (a new IoTDA username, a new TLS session); reconnecting is the
consumer's decision (consumer.py), never proton's, whose built-in reconnect would reuse a
username IoTDA refuses five minutes later.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from proton import Connection as ProtonConnection
from proton import Delivery, Event, Link, Receiver, SSLDomain
from proton import Endpoint as ProtonEndpoint
from proton import Message as ProtonMessage
from proton.handlers import MessagingHandler
from proton.reactor import ApplicationEvent, Container, EventInjector

from tracker.amqp.endpoint import Endpoint

logger = logging.getLogger(__name__)
T = TypeVar("T")

HEARTBEAT = 8.0  # seconds of silence before the connection is taken for dead (IoTDA's 8000 ms)
IOTDA_VHOST = "default"  # IoTDA's connection string: amqp.vhost=default
CLOSE_TIMEOUT = 2.0  # seconds the broker has to answer our close before we just go
OVERHEAD = 64 * 1024  # bytes of an AMQP message beyond its body (headers, annotations) we read


@dataclass(frozen=True, slots=True)
class Message:
    """One message, as the loop sees it: a number to settle it by, and its bytes."""

    number: int
    body: bytes | None  # the notification: a data section, or a string or binary value
    encoded: bytes  # the message as it came over the wire (kept when `body` is None)
    problem: str | None  # why no body was taken: a value of another AMQP type, or too large


@dataclass
class Gauges:
    """Written by the reactor thread, read by the loop for /readyz and /metrics."""

    credit: int = 0  # credit the links hold now
    unsettled: int = 0  # messages received and not yet settled
    available: int | None = None  # messages the broker says are waiting, if it says


class Connection:
    """One connection attempt, from connecting to closed, on a thread of its own."""

    def __init__(
        self,
        endpoint: Endpoint,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[Message]], None],
        max_body: int,
    ) -> None:
        self.endpoint = endpoint
        self.gauges = Gauges()
        self.opened: asyncio.Future[None] = loop.create_future()  # every link attached
        self.ended: asyncio.Future[str] = loop.create_future()  # why the connection ended
        self.returned = 0  # messages unsettled when it ended: the broker delivers them again
        self._loop = loop
        self._deliver = deliver
        self._handler = _Handler(self, max_body)
        self._thread = threading.Thread(target=self._run, name="tracker-amqp", daemon=True)
        # Settlements and orders from the loop, taken by the reactor in batches; messages the
        # other way, taken by the loop in batches.
        self._orders: deque[tuple[str, object]] = deque()
        self._woken = False
        self._injector = _Wakeup()
        self._inbox: deque[Message] = deque()
        self._inbox_scheduled = False

    def start(self) -> None:
        self._thread.start()

    def accept(self, number: int, *, replenish: bool) -> None:
        """Accept message `number`, and give its credit back if `replenish` (from the loop; a
        connection that has ended ignores it: the broker delivers the message again)."""
        self._order("accept", (number, replenish))

    def close(self, why: str) -> None:
        self._order("close", why)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _order(self, kind: str, value: object) -> None:
        self._orders.append((kind, value))
        if not self._woken:  # one wake-up per batch: a pipe write each, otherwise
            self._woken = True
            self._injector.trigger(ApplicationEvent("orders"))

    def _run(self) -> None:
        why = "the reactor stopped"
        try:
            Container(self._handler).run()
            why = self._handler.why or why
            self.returned = len(self._handler.unsettled)
        except Exception as error:  # reported; the consumer connects again
            logger.exception("the AMQP client failed")
            why = f"the AMQP client failed: {type(error).__name__}: {error}"
        finally:
            self._injector.release()
            self.gauges.credit = self.gauges.unsettled = 0
            self._loop.call_soon_threadsafe(_resolve, self.ended, why)

    def _hand_over(self, message: Message) -> None:
        """From the reactor: queue `message` for the loop, waking it once per batch."""
        self._inbox.append(message)
        if not self._inbox_scheduled:
            self._inbox_scheduled = True
            self._loop.call_soon_threadsafe(self._take_inbox)

    def _take_inbox(self) -> None:
        """On the loop: everything handed over so far, in the order it arrived."""
        self._inbox_scheduled = False  # first: a message handed over from now on wakes it again
        batch = []
        while self._inbox:
            batch.append(self._inbox.popleft())
        if batch:
            self._deliver(batch)

    def _take_orders(self) -> list[tuple[str, object]]:
        self._woken = False  # first: an order appended from now on wakes the reactor again
        orders = []
        while self._orders:
            orders.append(self._orders.popleft())
        return orders


class _Handler(MessagingHandler):
    """Runs on the reactor thread only."""

    def __init__(self, owner: Connection, max_body: int) -> None:
        super().__init__(prefetch=0, auto_accept=False, auto_settle=True)
        self.owner = owner
        self.limit = max_body + OVERHEAD
        self.why: str | None = None
        self.connection: ProtonConnection | None = None
        self.container: Container | None = None
        self.receivers: list[Receiver] = []
        self.unsettled: dict[int, Delivery] = {}
        self.held: dict[str, int] = {}  # unsettled messages, by link name
        self.partial: dict[Delivery, bytearray] = {}
        self.oversized: set[Delivery] = set()
        self.numbers = iter(range(1, 1 << 62))

    # -- connecting

    def on_start(self, event: Event) -> None:
        container = self.container = event.container
        container.selectable(self.owner._injector)  # noqa: SLF001 - its own connection's
        endpoint = self.owner.endpoint
        user, password = endpoint.credentials(int(time.time() * 1000))
        self.connection = container.connect(
            endpoint.url,
            reconnect=False,
            heartbeat=HEARTBEAT,
            ssl_domain=_tls(endpoint) if endpoint.tls else None,
            allowed_mechs="PLAIN" if user else "ANONYMOUS",
            user=user,
            password=password,
            sni=endpoint.host if endpoint.tls else None,  # also the name to verify
            virtual_host=IOTDA_VHOST if endpoint.access_key is not None else None,
        )
        suffix = uuid.uuid4().hex[:12]
        # Each link opened at once: IoTDA closes a connection without one 15 s after opening.
        self.receivers = [
            container.create_receiver(
                self.connection, endpoint.address, name=f"tracker-{suffix}-{index}"
            )
            for index in range(endpoint.links)
        ]

    def on_link_opened(self, event: Event) -> None:
        link = event.receiver
        if link is None:
            return
        link.flow(self.owner.endpoint.credit)
        self._measure()
        if all(r.state & ProtonEndpoint.REMOTE_ACTIVE for r in self.receivers):
            self.owner._loop.call_soon_threadsafe(_resolve, self.owner.opened, None)  # noqa: SLF001

    # -- receiving

    def on_delivery(self, event: Event) -> None:
        delivery = event.delivery
        link = event.receiver
        if delivery is None or link is None:
            return
        if delivery.aborted:  # the sender gave up on it mid-transfer: never ours
            self.partial.pop(delivery, None)
            self.oversized.discard(delivery)
            delivery.settle()
            return
        if not delivery.readable:
            return
        chunk = link.recv(delivery.pending) or b""
        buffer = self.partial.setdefault(delivery, bytearray())
        if len(buffer) < self.limit:  # past the limit, only a prefix is kept (like POST's 413)
            buffer += chunk[: self.limit - len(buffer)]
        if len(buffer) + len(chunk) > self.limit and chunk:
            self.oversized.add(delivery)
        if delivery.partial:
            return
        encoded = bytes(self.partial.pop(delivery))
        oversized = delivery in self.oversized
        self.oversized.discard(delivery)
        link.advance()
        number = next(self.numbers)
        self.unsettled[number] = delivery
        self.held[link.name] = self.held.get(link.name, 0) + 1
        self._measure()
        self.owner._hand_over(_message(number, encoded, oversized))  # noqa: SLF001

    # -- orders from the loop

    def on_orders(self, _: Event) -> None:
        for kind, value in self.owner._take_orders():  # noqa: SLF001
            if kind == "accept":
                assert isinstance(value, tuple)  # noqa: S101 - Connection.accept's
                self._accept(*value)
            elif kind == "close":
                self._close(str(value))
        self._measure()

    def _accept(self, number: int, replenish: bool) -> None:
        delivery = self.unsettled.pop(number, None)
        if delivery is None or delivery.settled:
            return
        delivery.update(Delivery.ACCEPTED)
        delivery.settle()
        link = delivery.link
        self.held[link.name] -= 1
        if replenish and link.state & ProtonEndpoint.LOCAL_ACTIVE:
            self._top_up(link)

    def _top_up(self, link: Link) -> None:
        """Give the link credit up to the window again, once half of it is spent.

        The credit is computed from what is unsettled, not added one per settlement: RabbitMQ
        3.x resets its side of the credit from each flow frame without counting the messages
        already on their way, so a flow frame per settlement let it send thousands past the
        window (measured: 4,440 unsettled with a window of 500). Counted this way, whatever it
        sends beyond the window is simply not given back, and flow frames are few.
        """
        window = self.owner.endpoint.credit
        unsettled = self.held.get(link.name, 0)
        if unsettled + max(link.credit, 0) > window // 2:
            return
        wanted = window - unsettled  # the credit the broker should hold now
        if wanted > link.credit:
            link.flow(wanted - link.credit)

    def _close(self, why: str) -> None:
        self._ended(why)
        self._close_connection()
        if self.container is not None:  # a broker that never answers the close must not hold us
            self.container.schedule(CLOSE_TIMEOUT, self)

    def on_timer_task(self, event: Event) -> None:
        """The close was not answered in time: end the reactor anyway (the broker puts back
        what was unsettled once it notices the connection gone)."""
        self._stop(event)

    def _close_connection(self) -> None:
        if self.connection is not None and self.connection.state & ProtonEndpoint.LOCAL_ACTIVE:
            self.connection.close()  # the broker puts back what was not settled

    # -- ending

    def on_transport_error(self, event: Event) -> None:
        condition = event.transport.condition if event.transport else None
        self._ended(_condition("connection failed", condition))

    def on_connection_error(self, event: Event) -> None:
        condition = event.connection.remote_condition if event.connection else None
        self._ended(_condition("the broker closed the connection", condition))
        self._close_connection()

    def on_session_error(self, event: Event) -> None:
        condition = event.session.remote_condition if event.session else None
        self._ended(_condition("the broker ended the session", condition))
        self._close_connection()

    def on_link_error(self, event: Event) -> None:
        condition = event.link.remote_condition if event.link else None
        self._ended(_condition("the broker detached the link", condition))
        self._close_connection()

    def on_connection_closed(self, _: Event) -> None:
        self._ended("the connection was closed")

    def on_disconnected(self, event: Event) -> None:
        self._ended("the connection dropped")
        self._stop(event)

    def on_transport_closed(self, event: Event) -> None:
        self._stop(event)

    def _ended(self, why: str) -> None:
        if self.why is None:
            self.why = why

    def _stop(self, event: Event) -> None:
        self.owner._injector.close()  # noqa: SLF001 - with no connection left, the reactor ends
        event.container.stop()

    def _measure(self) -> None:
        gauges = self.owner.gauges
        active = [r for r in self.receivers if r.state & ProtonEndpoint.LOCAL_ACTIVE]
        gauges.credit = sum(r.credit for r in active)
        gauges.unsettled = len(self.unsettled)
        hints = [r.available for r in active if r.available]
        gauges.available = sum(hints) if hints else None


def _message(number: int, encoded: bytes, oversized: bool) -> Message:
    """The notification's bytes from an encoded AMQP message: a data section as it is, a string
    value in UTF-8, a binary value as it is; anything else is a refusal to keep."""
    if oversized:
        return Message(number, None, encoded, "the AMQP message is larger than the body limit")
    decoded = ProtonMessage()
    try:
        decoded.decode(encoded)
    except Exception as error:  # noqa: BLE001 - a message proton cannot decode is refused
        return Message(number, None, encoded, f"the AMQP message cannot be decoded: {error}")
    body = decoded.body
    if isinstance(body, str):
        return Message(number, body.encode("utf-8", "surrogatepass"), encoded, None)
    if isinstance(body, bytes | bytearray | memoryview):
        return Message(number, bytes(body), encoded, None)
    kind = "no body" if body is None else f"a body of AMQP type {type(body).__name__}"
    return Message(
        number, None, encoded, f"the AMQP message has {kind}; expected JSON text or bytes"
    )


def _tls(endpoint: Endpoint) -> SSLDomain:
    """Client TLS: the broker's certificate checked against the system's CAs (proton loads
    them) and TRACKER_AMQP_CA_FILE, and its name against the URL's host; unless told not to."""
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    if endpoint.ca_file:
        domain.set_trusted_ca_db(endpoint.ca_file)
    if endpoint.verify:
        domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    else:
        domain.set_peer_authentication(SSLDomain.ANONYMOUS_PEER)
    return domain


def _condition(what: str, condition: object) -> str:
    if condition is None:
        return what
    name = getattr(condition, "name", "")
    description = getattr(condition, "description", "") or ""
    return f"{what}: {name}: {description}".rstrip(": ")


def _resolve(future: asyncio.Future[T], value: T) -> None:
    if not future.done():
        future.set_result(value)


class _Wakeup(EventInjector):
    """proton's injector, safe to trigger after the reactor has gone, and closing its pipe
    then (proton's never closes it: two descriptors lost per reconnect)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._gone = False

    def trigger(self, event: ApplicationEvent) -> None:
        with self._lock:
            if not self._gone:
                super().trigger(event)

    def release(self) -> None:
        """Once the reactor has ended: nothing reads the pipe any more."""
        with self._lock:
            self._gone = True
            for fd in self.pipe:
                os.close(fd)
