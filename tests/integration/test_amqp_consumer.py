"""The AMQP consumer inside the application, against the machine's RabbitMQ: what the end-to-end
tests cannot provoke from outside a process."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.test_amqp import task
from tests.integration.conftest import MakeClient
from tests.support.rabbitmq import AMQP_URL, Queue, publish
from tests.support.waiting import until
from tracker import intake
from tracker.domain.delivery import NewEvent
from tracker.store.database import Database
from tracker.store.group_commit import GroupCommit


async def test_a_bug_on_one_message_keeps_it_in_rejected_and_its_stream_goes_on(
    make_client: MakeClient, queue: Queue, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message the tracker fails on must neither loop for ever (released, it would come
    straight back) nor be lost (accepted, nothing would hold it): it is kept in `rejected`
    with its bytes, then accepted, and the messages after it in its stream still apply."""
    before, poison, after = task(1), task(14), task(27)  # one task stream: 1, 14 and 27 mod 13
    real = intake.append

    async def failing(appends: GroupCommit, event: NewEvent) -> int | intake.Refused:
        if event.raw == poison:
            raise RuntimeError("a bug")
        return await real(appends, event)

    monkeypatch.setattr(intake, "append", failing)
    await asyncio.to_thread(publish, queue, [before, poison, after])
    client = await make_client(amqp_url=AMQP_URL, amqp_address=queue.address)

    async def settled() -> bool:
        kept = await database.fetch("test", "SELECT count(*) AS n FROM rejected")
        logged = await database.fetch("test", "SELECT count(*) AS n FROM events")
        return (kept[0]["n"], logged[0]["n"]) == (1, 2)

    await until(settled, "the poison kept and the two others logged", within=30)
    response = await client.get("/v1/rejected")
    [kept] = (await response.json())["items"]
    assert (kept["status"], kept["code"]) == (500, "internal_error")
    assert kept["body"] == poison.decode()
    assert await asyncio.to_thread(queue.count) == 0
    response = await client.get("/v1/tasks/amqp-t-1")
    assert (await response.json())["last_position"] == 2  # `after` applied, behind the poison
