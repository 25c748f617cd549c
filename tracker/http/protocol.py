"""Our connection handler: aiohttp's, with the edges a hostile client pushes on held in.

- Bodies are never inflated: aiohttp would decompress a `Content-Encoding: gzip` body as it
  arrives, even one the handler refuses unread (a 400 KB bomb is 400 MB of work). Ingest refuses
  such a body with 415 (http/ingest.py).
- A body the handler did not read to its end is not drained after the answer (aiohttp's
  "lingering" reads it for up to 10 s): the connection is closed instead (`Connection: close`, see
  `close_unread_bodies`), so the body of a request refused unread, e.g. for its token, is
  never read at all.
- Headers have a deadline: a connection must finish a request's headers within
  TRACKER_HEADER_TIMEOUT of opening or of its previous answer (aiohttp's keep-alive timer,
  which also closes idle keep-alive connections then).
- At most TRACKER_MAX_CONNECTIONS connections per process (connections.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from tracker.config import Settings
from tracker.http.connections import TurnAwayReport, TurnedAway, too_many_connections
from tracker.http.malformed import JsonErrors


def handler_args(settings: Settings) -> dict[str, Any]:
    """What each connection's handler is built with (web.Application's `handler_args`)."""
    return {
        "auto_decompress": False,
        "lingering_time": 0,
        "keepalive_timeout": settings.header_timeout,
        "max_connections": settings.max_connections,
    }


class _Handler(JsonErrors):
    def __init__(
        self,
        manager: web.Server,
        *,
        max_connections: int,
        **kwargs: Any,  # noqa: ANN401 - aiohttp's own keyword arguments
    ) -> None:
        super().__init__(manager, **kwargs)
        self._max_connections = max_connections

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._manager
        if isinstance(server, _Server) and len(server.connections) >= self._max_connections:
            # Never registered with the server: nothing of ours is held for this connection.
            server.report.turned_away(self._max_connections)
            turned_away = TurnedAway(too_many_connections(self._max_connections))
            transport.set_protocol(turned_away)
            turned_away.connection_made(transport)
            return
        super().connection_made(transport)


class _Server(web.Server):
    """The server aiohttp builds, handing out `_Handler`s."""

    report: TurnAwayReport

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


def serve_with_our_handler(app: web.Application) -> None:
    """Make the servers that run `app` (run_app's, a test server's) use `_Handler`."""
    make_server = app._make_handler  # noqa: SLF001 - the one hook aiohttp has for this

    def make(**kwargs: Any) -> web.Server:  # noqa: ANN401 - aiohttp's own keyword arguments
        server = make_server(**kwargs)
        server.__class__ = _Server  # the same server, handing out our handler
        assert isinstance(server, _Server)  # noqa: S101 - for the type checker
        server.report = TurnAwayReport()
        return server

    app._make_handler = make  # type: ignore[method-assign] # noqa: SLF001


@web.middleware
async def close_unread_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body the handler did not read to its end is not read after the answer either: say so,
    and close. Whether it had arrived whole by then does not matter (under load a refused
    body may have: the connection would stay open until the header deadline, test_edge_attacks
    saw 15 s), so the rule depends on what was read, never on timing."""
    response = await handler(request)
    if not request.content.at_eof() and not response.prepared:
        response.force_close()
    return response
