"""The clients behind tests/support/rabbitmq.py: proton (AMQP 1.0) to publish and receive as IoTDA
would, pika (AMQP 0-9-1) to manage queues and preload them. Imported only when used, so that a
machine without python-qpid-proton or pika collects the tests and skips them with one line
(rabbitmq.require_broker) instead of failing to import."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol, TypeVar, assert_never
from urllib.parse import urlsplit

from pika import BasicProperties, BlockingConnection, SelectConnection, URLParameters
from pika.adapters.blocking_connection import BlockingChannel
from pika.channel import Channel
from pika.exceptions import AMQPConnectionError, ChannelClosedByClient, ConnectionClosedByClient
from pika.frame import Method
from pika.spec import Basic
from proton import Connection, Event, Message
from proton.handlers import MessagingHandler
from proton.reactor import Container

from tests.support.rabbitmq import Received, Section

T = TypeVar("T")


class _Timer(Protocol):  # proton's Task, which proton.reactor does not export
    def cancel(self) -> None: ...


class BrokerError(AssertionError):
    """The broker refused, dropped or never settled what a test sent or asked for."""


def message(body: bytes | str, section: Section) -> Message:
    """`body` in the body section IoTDA could use. Durable: RabbitMQ keeps a message whose header
    is not durable in memory only, and a durable queue loses it on restart."""
    match section:
        case "data":  # a data section; proton makes one of bytes only when `inferred`
            return Message(body=_binary(body), inferred=True, durable=True)
        case "binary":  # an amqp-value holding binary: proton's default for bytes
            return Message(body=_binary(body), durable=True)
        case "string":  # an amqp-value holding a string (UTF-8 on the wire)
            return Message(body=body if isinstance(body, str) else body.decode(), durable=True)
        case _:
            assert_never(section)


def received(got: Message) -> Received:
    body = got.body
    if isinstance(body, str):
        return Received(body, "string", got)
    if isinstance(body, bytes | memoryview):  # proton 0.40 decodes binary to a memoryview
        return Received(bytes(body), "data" if got.inferred else "binary", got)
    raise BrokerError(f"a body that is neither binary nor a string: {body!r}")


def _binary(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


class _Client(MessagingHandler):
    """One connection with one link, run by proton's reactor in this thread until the work is
    done (`finish`); `run` raises on any error the broker or the socket reports, or after
    `timeout` seconds, rather than waiting or reconnecting."""

    def __init__(self, url: str, address: str, timeout: float, **options: Any) -> None:
        super().__init__(**options)
        self.url, self.address, self.timeout = url, address, timeout
        self.error: str | None = None
        self._connection: Connection | None = None
        self._timer: _Timer | None = None

    def run(self) -> None:
        Container(self).run()
        if self.error:
            raise BrokerError(f"{self.error} ({_without_password(self.url)}, {self.address})")

    def open_link(self, container: Container, connection: Connection) -> None:
        raise NotImplementedError

    def on_start(self, event: Event) -> None:
        self._timer = event.container.schedule(self.timeout, self)
        mechanism = "PLAIN" if urlsplit(self.url).username else "ANONYMOUS"
        self._connection = event.container.connect(
            self.url, allowed_mechs=mechanism, reconnect=False
        )
        self.open_link(event.container, self._connection)

    def finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._connection is not None:
            self._connection.close()

    def fail(self, why: str) -> None:
        self.error = self.error or why
        self.finish()

    def on_timer_task(self, event: Event) -> None:  # noqa: ARG002 - proton's signature
        self.fail(f"nothing settled within {self.timeout:g} s")

    def on_transport_error(self, event: Event) -> None:
        self.fail(f"transport: {event.transport and event.transport.condition}")

    def on_connection_error(self, event: Event) -> None:
        self.fail(f"connection: {event.connection and event.connection.remote_condition}")

    def on_session_error(self, event: Event) -> None:
        self.fail(f"session: {event.session and event.session.remote_condition}")

    def on_link_error(self, event: Event) -> None:
        self.fail(f"link: {event.link and event.link.remote_condition}")


class Publisher(_Client):
    """Sends while the broker gives credit (RabbitMQ gives 65536 at once) and finishes when every
    message is accepted: no round trip per message."""

    def __init__(self, url: str, address: str, messages: Iterator[Message], timeout: float) -> None:
        super().__init__(url, address, timeout)
        self._messages = messages
        self._exhausted = False
        self.sent = self.accepted = 0

    def open_link(self, container: Container, connection: Connection) -> None:
        container.create_sender(connection, self.address)

    def on_sendable(self, event: Event) -> None:
        sender = event.sender
        assert sender is not None
        while sender.credit > 0 and not self._exhausted:
            next_message = next(self._messages, None)
            if next_message is None:
                self._exhausted = True
            else:
                sender.send(next_message)
                self.sent += 1
        self._finish_when_all_accepted()

    def on_accepted(self, event: Event) -> None:  # noqa: ARG002 - proton's signature
        self.accepted += 1
        self._finish_when_all_accepted()

    def on_rejected(self, event: Event) -> None:
        condition = event.delivery and event.delivery.remote.condition
        self.fail(f"message {self.accepted + 1} rejected: {condition}")

    def on_released(self, event: Event) -> None:  # noqa: ARG002 - proton's signature
        self.fail(f"message {self.accepted + 1} released: no queue took it")

    def _finish_when_all_accepted(self) -> None:
        if self._exhausted and self.accepted == self.sent:
            self.finish()


class Receiver(_Client):
    """Takes exactly `count` messages (credit for that many, no more, so none is delivered only
    to be put back) and accepts each."""

    def __init__(self, url: str, address: str, count: int, timeout: float) -> None:
        super().__init__(url, address, timeout, prefetch=0, auto_accept=False)
        self.count = count
        self.messages: list[Message] = []

    def open_link(self, container: Container, connection: Connection) -> None:
        container.create_receiver(connection, self.address).flow(self.count)

    def on_message(self, event: Event) -> None:
        assert event.delivery is not None
        self.messages.append(event.message)
        self.accept(event.delivery)
        if len(self.messages) == self.count:
            self.finish()

    def on_timer_task(self, event: Event) -> None:  # noqa: ARG002 - proton's signature
        self.fail(f"{len(self.messages)} of {self.count} messages within {self.timeout:g} s")


class Admin:
    """An AMQP 0-9-1 channel for one queue's management, opened again once if it was lost (the
    broker restarted). Heartbeats off: a blocking connection answers them only while called, and
    a test may leave it idle for minutes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._connection: BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    def call(self, operation: Callable[[BlockingChannel], T]) -> T:
        try:
            return operation(self._open())
        except AMQPConnectionError:
            self.close()
            return operation(self._open())

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(AMQPConnectionError):  # the broker is gone already
                self._connection.close()
        self._connection = self._channel = None

    def _open(self) -> BlockingChannel:
        if self._connection is None or self._connection.is_closed:
            parameters = URLParameters(self.url)
            parameters.heartbeat = 0
            self._connection = BlockingConnection(parameters)
            self._channel = None
        if self._channel is None or self._channel.is_closed:
            self._channel = self._connection.channel()
        return self._channel


class Preloader:
    """Publishes persistent messages to one queue over AMQP 0-9-1 with publisher confirms, at
    most `window` unconfirmed: the broker's batched acks pace it, not a round trip per message
    (pika's blocking channel waits for each confirm). Mandatory, so a missing queue fails it."""

    def __init__(self, url: str, queue: str, bodies: Iterator[bytes], window: int) -> None:
        self.queue, self.window, self.sent = queue, window, 0
        self.error: str | None = None
        self._bodies = bodies
        self._unconfirmed: set[int] = set()
        self._properties = BasicProperties(delivery_mode=2)  # persistent: survives a restart
        self._channel: Channel | None = None
        self._connection = SelectConnection(
            URLParameters(url),
            on_open_callback=lambda connection: connection.channel(on_open_callback=self._ready),
            on_open_error_callback=lambda _, error: self._stop(f"cannot connect: {error!r}"),
            on_close_callback=self._closed,
        )

    def run(self) -> int:
        try:
            self._connection.ioloop.start()
        finally:
            self._connection.ioloop.close()  # its wake-up socket pair
        if self.error:
            raise BrokerError(f"preloading {self.queue}: {self.error} after {self.sent} sent")
        return self.sent

    def _ready(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_return_callback(lambda *_: self._fail("a message was returned unrouted"))
        channel.add_on_close_callback(self._channel_closed)
        channel.confirm_delivery(self._confirmed, callback=lambda _: self._publish())

    def _publish(self) -> None:
        assert self._channel is not None
        while len(self._unconfirmed) < self.window:
            body = next(self._bodies, None)
            if body is None:
                if not self._unconfirmed:
                    self._connection.close()
                return
            self._channel.basic_publish("", self.queue, body, self._properties, mandatory=True)
            self.sent += 1  # the channel's delivery tags count from 1, as this does
            self._unconfirmed.add(self.sent)

    def _confirmed(self, frame: Method[Basic.Ack | Basic.Nack]) -> None:
        confirmed = frame.method
        if isinstance(confirmed, Basic.Nack):
            self._fail(f"the broker refused message {confirmed.delivery_tag}")
            return
        if confirmed.multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > confirmed.delivery_tag}
        else:
            self._unconfirmed.discard(confirmed.delivery_tag)
        if self.error is None:
            self._publish()

    def _channel_closed(self, _: Channel, reason: BaseException) -> None:
        if not isinstance(reason, ChannelClosedByClient):  # as the connection closes
            self._fail(f"channel closed: {reason!r}")

    def _fail(self, why: str) -> None:
        self.error = self.error or why
        if self._connection.is_open:
            self._connection.close()

    def _closed(self, _: SelectConnection, reason: BaseException) -> None:
        if not isinstance(reason, ConnectionClosedByClient):
            self.error = self.error or f"connection closed: {reason!r}"
        self._connection.ioloop.stop()

    def _stop(self, why: str) -> None:
        self.error = why
        self._connection.ioloop.stop()


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
