"""The RabbitMQ helpers the AMQP channel's tests stand on (tests/support/rabbitmq.py): a body comes
back byte for byte in the section it was sent in, a queue's counts are true, a broker without the
AMQP 1.0 plugin is named as such, and a private node restarts with its durable messages and
leaves no process behind."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from testkit.server import free_port
from tests.support.rabbitmq import (
    AMQP_0_9_1_HEADER,
    PrivateBroker,
    Queue,
    Section,
    _broker_problem,
    _processes_of,
    publish,
    publish_many,
    receive,
    require_broker,
)

BODIES = [b'{"notifyType": "swUpgradeStateChangeNotify"}', "d-ü-1".encode(), b"\x00\xff\x80"]


@pytest.mark.parametrize("section", ["data", "string", "binary"])
def test_a_body_comes_back_byte_for_byte_in_the_section_it_was_sent_in(
    queue: Queue, section: Section
) -> None:
    bodies = BODIES[:2] if section == "string" else BODIES  # a string is UTF-8
    assert publish(queue, bodies, section=section) == len(bodies)
    assert queue.count() == len(bodies)

    got = receive(queue, len(bodies))

    sent = [body.decode() for body in bodies] if section == "string" else bodies
    assert [(each.body, each.section) for each in got] == [(body, section) for body in sent]
    assert all(each.message.durable for each in got)  # so that they outlive a broker restart
    assert queue.count() == 0


def test_preloaded_bodies_arrive_as_data_sections_and_purge_empties(queue: Queue) -> None:
    assert publish_many(queue, BODIES) == 3
    assert [(each.body, each.section) for each in receive(queue, 3)] == [
        (body, "data") for body in BODIES
    ]
    assert publish_many(queue, [b"left"] * 5) == 5
    assert queue.purge() == 5
    assert queue.count() == 0


def test_a_receiving_link_counts_as_a_consumer(queue: Queue) -> None:
    assert queue.consumers() == 0
    with ThreadPoolExecutor(1) as pool:
        taking = pool.submit(receive, queue, 1)
        eventually(lambda: queue.consumers() == 1, "the receiving link counted as a consumer")
        publish(queue, [b"one"])
        assert [each.body for each in taking.result(10)] == [b"one"]
    # The broker lets go of a consumer once the connection's processes end, a moment later.
    eventually(lambda: queue.consumers() == 0, "the closed link no longer counted")


def test_nothing_listening_and_a_broker_without_the_plugin_are_named() -> None:
    port = free_port()
    assert _broker_problem(f"amqp://127.0.0.1:{port}") == (
        f"RabbitMQ is not running at 127.0.0.1:{port}: apt-get install -y rabbitmq-server"
    )
    with speaking_only_0_9_1() as port:
        assert _broker_problem(f"amqp://127.0.0.1:{port}") == (
            "RabbitMQ's AMQP 1.0 plugin is off: rabbitmq-plugins enable rabbitmq_amqp1_0"
        )


def test_a_private_broker_restarts_with_its_durable_messages_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    require_broker(url=None)
    with PrivateBroker(tmp_path) as broker:
        began = time.monotonic()
        queue = broker.start().queue()
        booted = time.monotonic()
        publish(queue, [b"sent over 1.0"])  # as guest, over loopback
        publish_many(queue, [b"sent over 0-9-1"])

        broker.restart()
        restarted = time.monotonic()
        assert [each.body for each in receive(queue, 2)] == [b"sent over 1.0", b"sent over 0-9-1"]

        broker.kill()  # a crash: the VM and its helpers go, its epmd stays (as the machine's would)
        assert [name for _, name in _processes_of(broker.node)] == ["epmd"]
        print(f"private broker: boot {booted - began:.1f} s, restart {restarted - booted:.1f} s")
    assert list(_processes_of(broker.node)) == []


def eventually(condition: Callable[[], bool], what: str, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"waited {within:g} s for {what}"
        time.sleep(0.01)


@contextlib.contextmanager
def speaking_only_0_9_1() -> Iterator[int]:
    """A server that answers a protocol header as RabbitMQ does without the 1.0 plugin: its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)

        def answer() -> None:
            client, _ = server.accept()
            with client:
                client.recv(8)
                client.sendall(AMQP_0_9_1_HEADER)

        thread = threading.Thread(target=answer)
        thread.start()
        port: int = server.getsockname()[1]
        yield port
        thread.join()
