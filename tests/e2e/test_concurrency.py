"""Many clients, two server processes, one database: live state is right and replay equals it."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import asyncpg

from testkit.fleet import Script, interleaved, rollout
from tests.e2e.conftest import tracker_command
from tests.support.waiting import until

CLIENTS = 64
DEVICES = 200


async def send(servers: list[str], scripts: list[Script], clients: int = CLIENTS) -> int:
    """Each client owns some streams and sends each stream's deliveries in order, alternating
    between the servers; different streams go concurrently. Returns how many were acknowledged."""
    turn = itertools.count()
    acked = 0

    async def client(session: aiohttp.ClientSession, mine: list[Script]) -> None:
        nonlocal acked
        for body in interleaved(mine):
            url = servers[next(turn) % len(servers)] + "/v1/notifications"
            async with session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == 200, await response.text()
                acked += 1

    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session, scripts[i::clients]) for i in range(clients)))
    return acked


async def assert_live_state(server: str, scripts: list[Script]) -> None:
    async with aiohttp.ClientSession() as session:
        for script in scripts:
            if "status" in script.final:
                async with session.get(f"{server}/v1/tasks/{script.stream_id}") as response:
                    assert (await response.json())["status"] == script.final["status"], (
                        script.stream_id
                    )
                path = f"{server}/v1/tasks/{script.stream_id}/transitions"
            else:
                async with session.get(f"{server}/v1/devices/{script.stream_id}") as response:
                    device = await response.json()
                for track, state in script.final.items():
                    assert device[track]["state"] == state, (script.stream_id, track)
                path = f"{server}/v1/devices/{script.stream_id}/transitions"
            async with session.get(path, params={"limit": "1000"}) as response:
                assert len((await response.json())["items"]) == script.transitions, script.stream_id


async def test_64_clients_200_devices_two_servers_then_replay_check_is_clean(
    two_servers: list[str], database_url: str
) -> None:
    scripts = rollout("load", DEVICES, tasks=20)
    acked = await send(two_servers, scripts)
    assert acked == sum(len(s.bodies) for s in scripts)
    await assert_live_state(two_servers[0], scripts)
    code, output = await tracker_command(database_url, "replay", "--check")
    assert code == 0, output
    assert "check: no drift" in output
    print(output)


async def test_a_replay_during_the_load_swaps_in_cleanly(
    two_servers: list[str], database_url: str
) -> None:
    # Group commit makes 200 devices' worth too quick to overlap a replay: send five times more.
    scripts = rollout("swap", DEVICES * 5, tasks=20, seed=11)
    load = asyncio.create_task(send(two_servers, scripts))
    conn = await asyncpg.connect(database_url)
    try:
        reached = "SELECT EXISTS (SELECT FROM events)"
        await until(lambda: conn.fetchval(reached), "the load to reach the log", within=30)
    finally:
        await conn.close()
    assert not load.done(), "the load finished before the replay started; make it longer"
    code, output = await tracker_command(database_url, "replay", "--jobs", "2")
    assert code == 0, output
    assert "ingestion paused" in output
    assert "2 processes" in output
    print(output)  # the pause and the rate, for the record (pytest -s)
    await load
    await assert_live_state(two_servers[1], scripts)
    code, output = await tracker_command(database_url, "replay", "--check")
    assert code == 0, output
