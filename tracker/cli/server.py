"""`tracker serve` and `tracker migrate`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, database, database_url
from tracker.config import Settings


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="receive notifications and answer queries over HTTP",
        epilog=EXIT_CODES,
    )
    serve.add_argument("--host", help="address to listen on (env TRACKER_HOST, 0.0.0.0)")
    serve.add_argument("--port", type=int, help="port to listen on (env TRACKER_PORT, 8080)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (env TRACKER_WORKERS, 1)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest accepted body (env TRACKER_MAX_BODY_BYTES, 1 MiB)",
    )
    serve.set_defaults(run=_serve, log_default="INFO")

    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="apply pending database migrations and exit",
        epilog=EXIT_CODES,
    )
    migrate.set_defaults(run=_migrate, log_default="INFO")


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from tracker.http.server import run  # noqa: PLC0415 - keep `tracker --help` fast

    return run(settings, database_url(settings))


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    async def apply() -> None:
        async with database(settings):
            pass

    asyncio.run(apply())
    print("database is up to date")
    return OK
