from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from testcontainers.community.postgres import PostgresContainer

from testkit.postgres import EmbeddedPostgres, create_database, drop_database, name_of
from tests.support import survivors
from tests.support.postgres import docker_answers
from tests.support.rabbitmq import PrivateBroker, Queue, require_broker
from tracker.store.database import Database
from tracker.store.migrations import migrate

# A webhook receiver on a real port (`receiver`), for every test that needs one.
pytest_plugins = ["tests.support.receiver"]

EXAMPLES = Path(__file__).resolve().parent / "examples"  # copies of ../shared/examples


def pytest_configure(config: pytest.Config) -> None:
    survivors.mark_this_run()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if any process a test started is still running (and end it)."""
    if hasattr(session.config, "workerinput"):
        return  # a worker of a distributed run: its controller checks
    left = survivors.survivors()
    if left:
        survivors.kill(left)
        listed = "\n".join(f"  {pid}: {command}" for pid, command in left)
        session.config.get_terminal_writer().line(
            f"\n{len(left)} process(es) started by the tests outlived them (killed now):\n{listed}",
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_report_header() -> str:
    return f"tracker test database: {_server_choice()}"


def _server_choice() -> str:
    if os.environ.get("TRACKER_TEST_DATABASE_URL"):
        return "TRACKER_TEST_DATABASE_URL"
    return "testcontainers" if docker_answers() else "embedded (pgserver)"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a real PostgreSQL server on which tests may create databases."""
    url = os.environ.get("TRACKER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    if docker_answers():
        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), in_memory=True)
    yield embedded.url
    embedded.cleanup()


@pytest.fixture(scope="session")
def migrated_template(postgres_server: str) -> Iterator[str]:
    """The name of a database migrated once per run, of which each test gets a copy: migrating
    anew for each of some 600 tests cost minutes of every run."""
    url = create_database(postgres_server)
    asyncio.run(_migrate(url))
    yield name_of(url)
    drop_database(url)


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture
def database_url(postgres_server: str, migrated_template: str) -> Iterator[str]:
    """A fresh database of this test's own, with the current schema (as `migrate` leaves it)."""
    url = create_database(postgres_server, template=migrated_template)
    yield url
    drop_database(url)


@pytest.fixture
def empty_database_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database: for the tests of migrating itself."""
    url = create_database(postgres_server)
    yield url
    drop_database(url)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = await Database.open(database_url, timeout=10, size=10)
    yield db
    await db.close()


@pytest.fixture
def stoppable_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    embedded = EmbeddedPostgres(tmp_path, in_memory=True)
    yield embedded
    if not embedded.is_running():
        embedded.start()
    embedded.cleanup()


@pytest.fixture
def queue() -> Iterator[Queue]:
    """A fresh durable queue of this test's own on the machine's RabbitMQ, deleted after it (the
    broker is shared by every worker: tests/support/rabbitmq.py)."""
    require_broker()
    with Queue.declare() as fresh:
        yield fresh


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A RabbitMQ node of this test's own, running, which it may stop, kill and restart."""
    require_broker(url=None)
    with PrivateBroker(tmp_path) as broker:
        yield broker.start()


@pytest.fixture(scope="session")
def examples() -> dict[str, bytes]:
    """The platform example bodies, byte for byte, by file stem."""
    found = {path.stem: path.read_bytes() for path in sorted(EXAMPLES.glob("*.json"))}
    assert len(found) == 5, f"expected the five examples in {EXAMPLES}"
    return found
