"""RabbitMQ for the AMQP channel's tests (issue 23): the machine's broker, a queue of each test's
own, publishing through AMQP 1.0 as IoTDA does, bulk preloading over AMQP 0-9-1, and a private
node that a test may stop, kill -9 and restart.

The machine's broker serves every test worker at once (pytest-xdist), so a test uses only queues
of its own (`queue` fixture) and never restarts it; a test that must, starts a PrivateBroker.

RabbitMQ 3.10's AMQP 1.0 plugin, as measured here:
- `/amq/queue/NAME` consumes from (or sends to) an existing queue; `/queue/NAME` declares one.
  A message sent to `/amq/queue/NAME` when there is no such queue is accepted, and dropped.
- A message whose header is not durable is kept in memory only: a durable queue loses it on a
  restart. `publish` sends durable messages.
- Outcomes: accepted acks, rejected drops, released requeues. `modified`, which proton's
  `release()` sends unless given `delivered=False`, ends the session (amqp:invalid-field).
- A requeued message comes back with `first_acquirer` false; its `delivery_count` stays 0.
- A body published over 0-9-1 (`publish_many`) arrives as one data section, with the routing key
  (the queue's name) as its subject and no message annotations.
- Flow frames to a receiver carry `available` (the queue's depth), but proton 0.40 drops it on a
  receiving link (`link.available` stays 0): the consumer's lag has to come from elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self
from urllib.parse import urlsplit

from testkit.postgres import memory_directory
from testkit.server import free_port
from tests.support.tools import missing

if TYPE_CHECKING:
    from pika import spec
    from proton import Message

    from tests.support.amqp_clients import Admin

AMQP_URL = os.environ.get("TRACKER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
SASL_HEADER = b"AMQP\x03\x01\x00\x00"  # what an AMQP 1.0 client sends first, and hears back
AMQP_0_9_1_HEADER = b"AMQP\x00\x00\x09\x01"  # RabbitMQ's answer to it without the 1.0 plugin

QUEUE_PREFIX = "/amq/queue/"  # an existing queue's AMQP 1.0 address on RabbitMQ 3.x: + its name
Section = Literal["data", "string", "binary"]  # the body sections IoTDA's messages may use


@dataclass(frozen=True)
class Received:
    """A message `receive` took: its body as the broker gave it, and the section it came in."""

    body: bytes | str
    section: Section
    message: Message  # the rest of it: header, properties, annotations


def require_broker(url: str | None = AMQP_URL) -> None:
    """Skip (fail under CI) with one line unless the clients are installed and RabbitMQ answers
    AMQP 1.0 at `url` (None: the clients only, for a PrivateBroker). Asked once per process."""
    problem = _client_problem() or (url and _broker_problem(url))
    if problem:
        missing(problem)


@functools.cache
def _client_problem() -> str | None:
    try:
        from proton import SSL  # noqa: PLC0415 - optional: its absence is what this reports
    except ImportError:
        return "python-qpid-proton is missing: pip install -e '.[amqp]'"
    if not SSL.present():
        return (
            "python-qpid-proton was built without TLS (amqps): apt-get install -y libssl-dev "
            "pkg-config && pip install --force-reinstall --no-cache-dir python-qpid-proton"
        )
    if importlib.util.find_spec("pika") is None:
        return "pika is missing: pip install -e '.[test]'"
    return None


@functools.cache
def _broker_problem(url: str) -> str | None:
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 5672}"
    answer = greeting(parts.hostname or "127.0.0.1", parts.port or 5672)
    if answer is None:
        return f"RabbitMQ is not running at {where}: apt-get install -y rabbitmq-server"
    if answer == AMQP_0_9_1_HEADER:
        return "RabbitMQ's AMQP 1.0 plugin is off: rabbitmq-plugins enable rabbitmq_amqp1_0"
    if answer != SASL_HEADER:
        return f"what answers at {where} does not speak AMQP 1.0 (it said {answer!r})"
    return None


def greeting(host: str, port: int, timeout: float = 5.0) -> bytes | None:
    """The 8 bytes a server answers to AMQP 1.0's SASL header (RabbitMQ without the 1.0 plugin
    answers with its 0-9-1 header and closes); None if nothing listens."""
    try:
        sock = socket.create_connection((host, port), timeout)
    except OSError:
        return None
    answer = b""
    with sock, contextlib.suppress(OSError):
        sock.sendall(SASL_HEADER)
        while len(answer) < 8 and (chunk := sock.recv(8 - len(answer))):
            answer += chunk
    return answer


class Queue:
    """A durable queue on RabbitMQ, managed over AMQP 0-9-1: AMQP 1.0 has no queue management."""

    def __init__(self, name: str, url: str = AMQP_URL) -> None:
        self.name, self.url = name, url
        self._admin: Admin | None = None

    @classmethod
    def declare(cls, url: str = AMQP_URL, prefix: str = "tracker-test") -> Queue:
        """A fresh one: unique across test workers and runs."""
        queue = cls(f"{prefix}-{uuid.uuid4().hex[:12]}", url)
        queue.admin().call(lambda channel: channel.queue_declare(queue.name, durable=True))
        return queue

    @property
    def address(self) -> str:
        """The queue's AMQP 1.0 address on RabbitMQ 3.x's plugin."""
        return f"{QUEUE_PREFIX}{self.name}"

    def count(self) -> int:
        """Messages ready to deliver (not those delivered and not yet settled)."""
        return self._declared().message_count

    def consumers(self) -> int:
        """Consumers attached, an AMQP 1.0 receiving link among them."""
        return self._declared().consumer_count

    def purge(self) -> int:
        frame = self.admin().call(lambda channel: channel.queue_purge(self.name))
        return frame.method.message_count or 0

    def delete(self) -> None:
        self.admin().call(lambda channel: channel.queue_delete(self.name))
        self.close()

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()

    def admin(self) -> Admin:
        if self._admin is None:
            from tests.support.amqp_clients import Admin  # noqa: PLC0415 - needs pika

            self._admin = Admin(self.url)
        return self._admin

    def _declared(self) -> spec.Queue.DeclareOk:
        frame = self.admin().call(lambda c: c.queue_declare(self.name, passive=True))
        return frame.method

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


def publish(
    to: str | Queue,
    bodies: Iterable[bytes | str],
    *,
    section: Section = "data",
    url: str | None = None,
    timeout: float = 60,
) -> int:
    """Send each body through AMQP 1.0 (proton), as one message, in `section`; return once the
    broker has accepted them all (how many). `to` is a queue or an AMQP 1.0 address.

    RabbitMQ 3.10 accepts, and drops, what is sent to `/amq/queue/NAME` when there is no such
    queue: that address is checked first (pika raises ChannelClosedByBroker, 404)."""
    from tests.support.amqp_clients import Publisher, message  # noqa: PLC0415 - needs proton

    address, url = _target(to, url)
    if isinstance(to, Queue):
        to.count()
    elif address.startswith(QUEUE_PREFIX):
        with contextlib.closing(Queue(address.removeprefix(QUEUE_PREFIX), url)) as named:
            named.count()
    publisher = Publisher(url, address, (message(body, section) for body in bodies), timeout)
    publisher.run()
    return publisher.sent


def receive(
    source: str | Queue, count: int, *, url: str | None = None, timeout: float = 30
) -> list[Received]:
    """Take exactly `count` messages through AMQP 1.0 (proton), accepting each."""
    from tests.support.amqp_clients import Receiver, received  # noqa: PLC0415 - needs proton

    address, url = _target(source, url)
    receiver = Receiver(url, address, count, timeout)
    receiver.run()
    return [received(message) for message in receiver.messages]


def publish_many(
    queue: str | Queue, bodies: Iterable[bytes | str], *, url: str | None = None, window: int = 2000
) -> int:
    """Preload a queue fast through AMQP 0-9-1 (pika, confirms in flight up to `window`): each
    body arrives at an AMQP 1.0 consumer as one data section. Returns how many."""
    from tests.support.amqp_clients import Preloader  # noqa: PLC0415 - needs pika

    name = queue.name if isinstance(queue, Queue) else queue
    url = url or (queue.url if isinstance(queue, Queue) else AMQP_URL)
    encoded = (body.encode() if isinstance(body, str) else body for body in bodies)
    return Preloader(url, name, encoded, window).run()


def _target(to: str | Queue, url: str | None) -> tuple[str, str]:
    if isinstance(to, Queue):
        return to.address, url or to.url
    return to, url or AMQP_URL


class PrivateBroker:
    """A RabbitMQ node of one test's own, as a real process, which the test may stop, kill -9 and
    restart without disturbing the machine's broker the other workers use. Its own node name,
    ports, data, logs, plugins (AMQP 1.0 only) and epmd: every process of it carries its node
    name in TRACKER_TEST_BROKER, by which it is found and ended, and nothing else is."""

    def __init__(self, keep_logs_in: Path) -> None:
        self.script = _server_script()
        self.keep_logs_in = keep_logs_in
        place = memory_directory(needed=1 << 28)  # boots ~1 s faster than on ext4
        self.home = Path(tempfile.mkdtemp(prefix="tracker-rabbitmq-", dir=place or keep_logs_in))
        self.node = f"tracker-{uuid.uuid4().hex[:12]}@localhost"
        self.port, self.dist_port, self.epmd_port = _distinct_free_ports(3)
        (self.home / "enabled_plugins").write_text("[rabbitmq_amqp1_0].\n")
        (self.home / "rabbitmq-env.conf").write_text("# not /etc/rabbitmq's\n")
        self.process: subprocess.Popen[bytes] | None = None
        self._queues: list[Queue] = []

    @property
    def url(self) -> str:
        """guest/guest, which RabbitMQ lets in over loopback only, as here."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}"

    def queue(self, prefix: str = "tracker-test") -> Queue:
        """A fresh durable queue on this node (gone with the node: no need to delete it), written
        to disk so that it outlives a kill -9 (~0.5 s).

        RabbitMQ 3.10 answers a durable declaration before Mnesia has made it last: killed soon
        after (1 in ~20 under load, here), the node came back without the queue. Having Mnesia
        dump its log lost none in 60 such kills."""
        queue = Queue.declare(self.url, prefix)
        self._queues.append(queue)
        self._control("eval", "mnesia:dump_log().")
        return queue

    def start(self, timeout: float = 60) -> Self:
        """Boot the node; return once it answers AMQP 1.0 (3.5-5 s here, up to 7 s cold)."""
        if self.process is not None:
            return self
        output = self.home / "output.log"
        seen = output.stat().st_size if output.exists() else 0
        with output.open("ab") as sink:
            self.process = subprocess.Popen(
                [self.script],
                env=self._environment(),
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a ^C to pytest is not a signal to the broker
            )
        deadline = time.monotonic() + timeout
        while not self._booted(output, seen):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                tail = output.read_bytes()[seen:][-3000:].decode(errors="replace")
                raise RuntimeError(f"RabbitMQ node {self.node} did not boot:\n{tail}")
            time.sleep(0.05)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Stop it gracefully (SIGTERM: RabbitMQ's script has the node shut down, ~1 s)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._end(signal.SIGKILL, keep_epmd=True)  # should be none left; if so, not graceful
        self.process = None

    def kill(self) -> None:
        """kill -9 the node (its script, the VM and the VM's helpers), as a crash would; its epmd
        stays, as the machine's would."""
        self._end(signal.SIGKILL, keep_epmd=True)
        if self.process is not None:
            self.process.wait()
            self.process = None

    def restart(self, timeout: float = 60) -> Self:
        """Stop it gracefully and boot it again: its durable queues and messages are kept."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """End every process of it, its epmd too; keep its logs beside the test's files."""
        for queue in self._queues:
            queue.close()
        self._end(signal.SIGKILL, keep_epmd=False)
        if self.process is not None:
            self.process.wait()
            self.process = None
        if self.home.parent != self.keep_logs_in:
            with contextlib.suppress(OSError):
                shutil.copytree(
                    self.home / "log", self.keep_logs_in / "rabbitmq-log", dirs_exist_ok=True
                )
                shutil.copy(self.home / "output.log", self.keep_logs_in / "rabbitmq-output.log")
            shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _control(self, *command: str) -> str:
        """rabbitmqctl on this node (it finds the node's cookie in HOME, its epmd by the port)."""
        done = subprocess.run(
            [str(Path(self.script).with_name("rabbitmqctl")), "-n", self.node, *command],
            env=self._environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(command)}: {done.stderr or done.stdout}")
        return done.stdout

    def _booted(self, output: Path, seen: int) -> bool:
        """Its own output says it booted (so the port is not another's) and AMQP 1.0 answers."""
        done = b"completed with" in output.read_bytes()[seen:]  # "Starting broker... completed"
        return done and greeting("127.0.0.1", self.port, timeout=1) == SASL_HEADER

    def _environment(self) -> dict[str, str]:
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("RABBITMQ_", "ERL_"))
        }
        home = str(self.home)
        return {
            **inherited,
            "TRACKER_TEST_BROKER": self.node,
            "HOME": home,  # the Erlang cookie goes here
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),  # default: AMQP port + 20000, maybe > 65535
            "ERL_EPMD_PORT": str(self.epmd_port),  # its own epmd: none of the machine's to share
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_CONF_ENV_FILE": f"{home}/rabbitmq-env.conf",
            "RABBITMQ_CONFIG_FILE": f"{home}/rabbitmq.conf",  # none: defaults and the above
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{home}/advanced.config",  # none either
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{home}/enabled_plugins",
            "RABBITMQ_MNESIA_BASE": f"{home}/mnesia",
            "RABBITMQ_LOG_BASE": f"{home}/log",
            "RABBITMQ_PID_FILE": f"{home}/rabbitmq.pid",
        }

    def _end(self, sent: signal.Signals, *, keep_epmd: bool) -> None:
        """Signal every live process of this node (but epmd when `keep_epmd`) until none is."""
        for _ in range(100):
            found = [
                pid for pid, name in _processes_of(self.node) if not (keep_epmd and name == "epmd")
            ]
            if not found:
                return
            for pid in found:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sent)
            time.sleep(0.05)
        raise RuntimeError(f"processes of RabbitMQ node {self.node} outlived SIGKILL: {found}")


def _server_script() -> str:
    """RabbitMQ's own start script. On Debian the one on PATH (/usr/sbin) is a wrapper that runs
    the real one as the `rabbitmq` user when called by root, which cannot write a test's
    directory: the real one is called instead."""
    debian = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
    found = shutil.which("rabbitmq-server")
    if found is None:
        missing("rabbitmq-server is missing: apt-get install -y rabbitmq-server")
    return str(debian) if debian.exists() else found


def _distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def _processes_of(node: str) -> Iterator[tuple[int, str]]:
    """(pid, name) of every live process carrying TRACKER_TEST_BROKER=node."""
    token = f"TRACKER_TEST_BROKER={node}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile, or not ours to read
        name, state = stat.partition("(")[2].rpartition(")")[0], stat.rsplit(")", 1)[1].split()[0]
        if state != "Z" and token in environ.split(b"\0"):
            yield int(entry.name), name
