"""`tracker serve` and `tracker migrate`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, USAGE, database, database_url
from tracker.config import Exposed, Settings, ShortToken, refuse_short_tokens
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
    serve.add_argument(
        "--host",
        help="address to listen on (env TRACKER_HOST; default: 0.0.0.0 with both tokens set, "
        "else 127.0.0.1 only)",
    )
    serve.add_argument("--port", type=int, help="port to listen on (env TRACKER_PORT, 8080)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (env TRACKER_WORKERS, 1)"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        help="largest accepted body (env TRACKER_MAX_BODY_BYTES, 1 MiB)",
    )
    serve.add_argument(
        "--tls-cert",
        metavar="PEM",
        help="serve HTTPS with this certificate chain (env TRACKER_TLS_CERT)",
    )
    serve.add_argument(
        "--tls-key", metavar="PEM", help="the certificate's private key (env TRACKER_TLS_KEY)"
    )
    serve.add_argument(
        "--insecure-open",
        action="store_true",
        default=None,
        help="listen beyond loopback although a token is unset: anyone who can reach the port "
        "can post or read (env TRACKER_INSECURE_OPEN=1)",
    )
    serve.add_argument(
        "--trust-proxy",
        action="store_true",
        default=None,
        help="behind a reverse proxy that ends TLS: take the scheme from X-Forwarded-Proto (so "
        "the session cookie keeps Secure) and the client address from X-Forwarded-For (last "
        "hop); without it both headers are ignored (env TRACKER_TRUST_PROXY=1)",
    )
    serve.add_argument(
        "--allow-unsafe-durability",
        action="store_true",
        default=None,
        help="serve although the database runs with fsync=off or synchronous_commit=off, where "
        "a crash of it loses commits already answered 200 (env "
        "TRACKER_ALLOW_UNSAFE_DURABILITY=1; a test bench only)",
    )
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
    from tracker.http.server import run  # noqa: PLC0415 - keep `tracker --help` fast

    try:
        refuse_short_tokens(settings)
        host = settings.listen_address()
        return run(settings.with_overrides(host=host), database_url(settings))
    except (ShortToken, Exposed, UnsafeDurability, UntrustedSchema) as refused:
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
