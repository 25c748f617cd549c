"""GET /v1/stream with a real client: live transitions, filters, disconnect and resume."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import asyncpg
import pytest
from pydantic import BaseModel

from testkit.fleet import Script, rollout
from testkit.server import TrackerProcess
from tests.e2e.conftest import StartTracker
from tracker.documents import FeedAlert, FeedDeviceTransition, FeedTaskTransition


def sw(device: str, state: str, op: str = "op-s") -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeStateChangeNotify",
            "deviceId": device,
            "appId": "a",
            "operationId": op,
            "subOperationId": "s",
            "swUpgradeState": state,
        }
    ).encode()


async def read_events(
    response: aiohttp.ClientResponse, count: int, timeout: float = 15
) -> list[dict[str, Any]]:
    """Parse server-sent events until `count` have arrived."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while len(events) < count:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line == "":
                if "data" in fields:
                    events.append(_checked(fields))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
    return events


def _checked(fields: dict[str, str]) -> dict[str, Any]:
    """One event, validated against the model the OpenAPI document names for it."""
    models: dict[str, type[BaseModel]] = {
        "device_transition": FeedDeviceTransition,
        "device_result": FeedDeviceTransition,
        "task_transition": FeedTaskTransition,
        "alert": FeedAlert,
    }
    models[fields["event"]].model_validate_json(fields["data"])
    return {"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])}


@pytest.fixture
def server(start_tracker: StartTracker, database_url: str) -> TrackerProcess:
    return start_tracker({"TRACKER_DATABASE_URL": database_url, "TRACKER_LOG_LEVEL": "WARNING"})


async def post(session: aiohttp.ClientSession, server: TrackerProcess, body: bytes) -> int:
    async with session.post(f"{server.url}/v1/notifications", data=body) as response:
        assert response.status == 200
        position: int = (await response.json())["position"]
        return position


async def test_a_client_that_disconnects_resumes_where_it_left_off(server: TrackerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await session.get(f"{server.url}/v1/stream", params={"device_id": "dev-1"})
        assert stream.headers["Content-Type"] == "text/event-stream"
        for state in ["downloading", "downloaded"]:
            await post(session, server, sw("dev-1", state))
            await post(session, server, sw("dev-2", state))  # filtered out
        first = await read_events(stream, 2)
        assert [(e["event"], e["device_id"], e["to_state"]) for e in first] == [
            ("device_transition", "dev-1", "downloading"),
            ("device_transition", "dev-1", "downloaded"),
        ]
        stream.close()  # the client goes away...

        missed = [await post(session, server, sw("dev-1", state)) for state in ["updating", "idle"]]
        # ...and comes back, as EventSource does, with the last id it saw.
        resumed = await session.get(
            f"{server.url}/v1/stream",
            params={"device_id": "dev-1"},
            headers={"Last-Event-ID": str(first[-1]["id"])},
        )
        await post(session, server, sw("dev-1", "downloading", op="op-2"))  # the next rollout
        later = await read_events(resumed, 3)
        assert [e["id"] for e in later[:2]] == missed
        assert [e["to_state"] for e in later] == ["updating", "idle", "downloading"]
        assert (later[2]["valid"], later[2]["applied"], later[2]["reason"]) == (True, True, None)
        resumed.close()


async def test_filters_by_operation_and_carries_task_transitions(
    server: TrackerProcess, examples: dict[str, bytes]
) -> None:
    async with aiohttp.ClientSession() as session:
        by_op = await session.get(f"{server.url}/v1/stream", params={"operation_id": "op-b"})
        everything = await session.get(f"{server.url}/v1/stream")
        await post(session, server, sw("x", "downloading", op="op-a"))
        await post(session, server, sw("y", "downloading", op="op-b"))
        await post(session, server, examples["iotda-batchtask-update"])
        [only] = await read_events(by_op, 1)
        assert (only["device_id"], only["operation_id"]) == ("y", "op-b")
        events = await read_events(everything, 3)
        assert [e["event"] for e in events] == [
            "device_transition",
            "device_transition",
            "task_transition",
        ]
        assert events[2]["task_id"] == "1a7ffc5c-d89c-44dd-8265"
        assert events[2]["applied"] is True
        by_op.close()
        everything.close()


async def test_a_stream_under_concurrent_writers_misses_nothing(
    server: TrackerProcess, database_url: str
) -> None:
    scripts = rollout("feed", devices=40, tasks=5)
    async with aiohttp.ClientSession() as session:
        stream = await session.get(f"{server.url}/v1/stream", params={"after": "0"})

        async def writer(mine: list[Script]) -> None:
            for script in mine:
                for body in script.bodies:
                    await post(session, server, body)

        await asyncio.gather(*(writer(scripts[i::16]) for i in range(16)))
        conn = await asyncpg.connect(database_url)
        expected = [
            r["position"]
            for r in await conn.fetch(
                "SELECT position FROM device_transitions UNION ALL "
                "SELECT position FROM task_transitions ORDER BY 1"
            )
        ]
        await conn.close()
        seen = [e["id"] for e in await read_events(stream, len(expected), timeout=60)]
        assert seen == expected
        stream.close()


async def test_a_bad_last_event_id_is_a_400(server: TrackerProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/v1/stream", headers={"Last-Event-ID": "yesterday"}) as response,
    ):
        assert response.status == 400


RETRY = b"retry: 2000\n\n"  # what a feed sends first (http/stream.py)


async def test_shutdown_ends_open_streams(server: TrackerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await session.get(f"{server.url}/v1/stream")
        assert await stream.content.readexactly(len(RETRY)) == RETRY  # the feed is open
        started = asyncio.get_running_loop().time()
        code = await asyncio.to_thread(server.stop, 20)
        assert code == 0
        assert asyncio.get_running_loop().time() - started < 10
        assert await stream.content.read() == b""  # ended, its last chunk sent: not cut off
        stream.close()


async def test_results_are_in_the_stream_as_they_commit(
    server: TrackerProcess, examples: dict[str, bytes]
) -> None:
    async with aiohttp.ClientSession() as session:
        stream = await session.get(f"{server.url}/v1/stream", params={"device_id": "d-7f3a9c01"})
        await post(session, server, examples["oceanconnect-swUpgradeStateChangeNotify"])
        position = await post(session, server, examples["oceanconnect-swUpgradeResultNotify"])
        events = await read_events(stream, 2)
        assert [e["event"] for e in events] == ["device_transition", "device_result"]
        result = events[1]
        assert (result["id"], result["kind"], result["applied"]) == (position, "result", True)
        assert (result["from_state"], result["to_state"]) == ("downloading", "downloading")
        assert result["result"]["result"] == "SUCCESS"
        assert result["result"]["current_version"] == "1.5"
        assert result["result"]["anomaly"] is False
        assert (result["operation_id"], result["sub_operation_id"]) == (
            "op-20261121-01",
            "sub-0001",
        )
        stream.close()


async def test_an_alert_that_fires_and_resolves_is_in_the_stream(
    start_tracker: StartTracker, database_url: str
) -> None:
    """In position order with the transitions that moved it, for the whole fleet and for its
    operation's stream."""
    admin = "stream-admin-token-0123"
    server = start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_LOG_LEVEL": "WARNING",
            "TRACKER_ADMIN_TOKEN": admin,
        }
    )
    guard = {"scope": {"operation_id": "op-a"}, "when": {"failed_above": 0}}
    async with aiohttp.ClientSession() as session:
        async with session.put(
            f"{server.url}/v1/guards/any-failure",
            json=guard,
            headers={"Authorization": f"Bearer {admin}"},
        ) as created:
            assert created.status == 201
        by_op = await session.get(f"{server.url}/v1/stream", params={"operation_id": "op-a"})
        everything = await session.get(f"{server.url}/v1/stream")
        await post(session, server, result("x", "FAIL", op="op-a", sub="s-1"))
        await post(session, server, result("x", "SUCCESS", op="op-a", sub="s-2"))
        await post(session, server, result("y", "FAIL", op="op-b", sub="s-1"))  # not in scope
        events = await read_events(everything, 5)
        assert [e["event"] for e in events] == [
            "device_result",
            "alert",
            "device_result",
            "alert",
            "device_result",
        ]
        fired, resolved = events[1], events[3]
        assert (fired["id"], fired["guard"], fired["operation_id"], fired["state"]) == (
            "any-failure:op-a:software:1",
            "any-failure",
            "op-a",
            "firing",
        )
        assert (resolved["state"], resolved["value"], resolved["threshold"]) == ("resolved", 0, 0)
        assert events[0]["position"] < fired["position"] < events[2]["position"]
        mine = await read_events(by_op, 4)
        assert [e["event"] for e in mine] == ["device_result", "alert", "device_result", "alert"]
        by_op.close()
        everything.close()


def result(device: str, outcome: str, *, op: str, sub: str) -> bytes:
    return json.dumps(
        {
            "notifyType": "swUpgradeResultNotify",
            "deviceId": device,
            "appId": "a",
            "operationId": op,
            "subOperationId": sub,
            "swUpgradeResult": outcome,
        }
    ).encode()
