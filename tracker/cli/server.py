"""`tracker serve` and `tracker migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, USAGE, database, database_url
from tracker.cli.flags import add_setting_flags
from tracker.config import Exposed, Settings, SharedToken, ShortToken, refuse_short_tokens
from tracker.store.durability import UnsafeDurability
from tracker.store.roles import set_up_runtime_role
from tracker.store.trust import UntrustedSchema


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="receive notifications and answer queries over HTTP",
        epilog=EXIT_CODES,
    )
    add_setting_flags(serve, "serve")  # --host, --port, --workers...: config.py declares them
    serve.set_defaults(run=_serve, log_default="INFO")

    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="apply pending database migrations and exit",
        epilog=EXIT_CODES,
    )
    migrate.add_argument(
        "--runtime-role",
        metavar="NAME",
        help="also create (if missing) and grant the least-privilege role `tracker serve` "
        "should connect as: SELECT and INSERT on the log, upserts on the projections, nothing "
        "more; its password, if any, from env TRACKER_RUNTIME_PASSWORD",
    )
    migrate.set_defaults(run=_migrate, log_default="INFO")


def _serve(settings: Settings, _: argparse.Namespace) -> int:
    from tracker.amqp.endpoint import Misconfigured  # noqa: PLC0415 - keep `--help` fast
    from tracker.http.server import HalfTls, run  # noqa: PLC0415 - keep `tracker --help` fast

    try:
        refuse_short_tokens(settings)
        host = settings.listen_address()
        return run(settings.with_overrides(host=host), database_url(settings))
    except (
        ShortToken,
        SharedToken,
        Exposed,
        UnsafeDurability,
        UntrustedSchema,
        HalfTls,
        Misconfigured,
    ) as refused:
        print(f"tracker serve: {refused}", file=sys.stderr)
        return USAGE


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    role: str | None = args.runtime_role

    async def apply() -> bool:
        async with database(settings) as db:  # migrates on opening
            if role is None:
                return False
            async with db.pool.acquire() as conn:
                password = os.environ.get("TRACKER_RUNTIME_PASSWORD")
                return await set_up_runtime_role(conn, role, password)

    created = asyncio.run(apply())
    print("database is up to date")
    if role is not None:
        print(f"runtime role {role!r} {'created and ' if created else ''}granted")
    return OK
