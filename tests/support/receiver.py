"""A webhook receiver for tests: a real aiohttp server on a real loopback port that records
every request and answers each path from a script (then 200)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

HANG = -1  # a scripted answer: never answer


@dataclass
class Hit:
    path: str
    body: bytes
    headers: dict[str, str]
    at: float  # loop time


@dataclass
class Receiver:
    """Records every request; answers each path from its script (then 200)."""

    base: str = ""
    hits: list[Hit] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        hit = Hit(request.path, body, dict(request.headers), asyncio.get_running_loop().time())
        self.hits.append(hit)
        script = self.scripts.get(request.path, [])
        status = script.pop(0) if script else 200
        if status == HANG:
            await self.released.wait()
        return web.Response(status=status if status != HANG else 200)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def ids(self, path: str | None = None) -> list[str]:
        return [hit.body.decode() for hit in self.hits if path is None or hit.path == path]


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Receiver]:
    """A receiver on a port of its own (its own origin) until the block ends."""
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", found.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    found.base = f"http://127.0.0.1:{server.port}"
    try:
        yield found
    finally:
        found.released.set()
        await server.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving() as found:
        yield found
