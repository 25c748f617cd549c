from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tracker.config import Settings
from tracker.http.app import create_app

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def make_client(database_url: str) -> AsyncIterator[MakeClient]:
    """Start the real application on a real localhost port, with settings overridden per test."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        url = overrides.pop("database_url", database_url)  # e.g. as another role
        settings = Settings(database_url=url, **overrides)
        client = TestClient(TestServer(create_app(settings, url), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    return await make_client()
