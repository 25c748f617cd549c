"""Query: `GET /v1/devices/{id}` from 32 keep-alive connections (wrk), over the devices of a
loaded log (the replay measurement's, when it ran), each connection walking through them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.load import Load, wrk, wrk_script
from bench.server import READ_HEADERS, tracker

CONNECTIONS = 32
PATH = "/v1/devices/"


async def device_reads(
    url: str, device_ids: list[str], seconds: int, warmup: int, workdir: Path
) -> Load:
    ids = workdir / "device-ids.txt"
    ids.write_text("".join(f"{device}\n" for device in device_ids))
    script = wrk_script(workdir / "get-device.lua", "get", ids, PATH, READ_HEADERS)
    async with tracker(url, workdir / "tracker-query.log") as server:
        pid = server.process.pid if server.process else None
        await asyncio.to_thread(wrk, server.url, script, CONNECTIONS, warmup, pid=pid)
        return await asyncio.to_thread(wrk, server.url, script, CONNECTIONS, seconds, pid=pid)
