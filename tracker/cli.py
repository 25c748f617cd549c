"""The `tracker` command: wires settings, the database and the server; no logic of its own."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tracker import __version__
from tracker.config import Settings
from tracker.store.errors import Unavailable

log = logging.getLogger("tracker")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.from_env().with_overrides(
        database_url=args.database_url,
        data_dir=args.data_dir,
        log_level=args.log_level,
        **{k: getattr(args, k, None) for k in ("host", "port", "max_body_bytes", "workers")},
    )
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    options = {"check": args.check} if hasattr(args, "check") else {}
    command: int = args.run(settings, **options)
    return command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Event-sourced tracker for device upgrades pushed by Huawei IoT platforms.",
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        help="PostgreSQL URL (env TRACKER_DATABASE_URL); unset: embedded PostgreSQL in --data-dir",
    )
    common.add_argument(
        "--data-dir",
        type=Path,
        help="embedded PostgreSQL's home (env TRACKER_DATA_DIR, ./.tracker)",
    )
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING... (env TRACKER_LOG_LEVEL)")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="receive notifications and answer queries over HTTP"
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
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser(
        "migrate", parents=[common], help="apply pending database migrations and exit"
    )
    migrate.set_defaults(run=_migrate)

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="rebuild every projection from the log and swap it in (ingestion keeps going)",
        description="Rebuild every projection from the event log into fresh tables and swap them "
        "in with one short transaction; the server keeps ingesting and answering meanwhile. "
        "With --check, rebuild into scratch space, compare with the live tables, print every "
        "difference and exit 1 if there is any.",
    )
    replay.add_argument(
        "--check", action="store_true", help="compare with the live tables instead of swapping"
    )
    replay.set_defaults(run=_replay)
    return parser


def database_url(settings: Settings) -> str:
    """The configured PostgreSQL, or the embedded one (started or joined here)."""
    if settings.database_url:
        log.info("using PostgreSQL from TRACKER_DATABASE_URL")
        return settings.database_url
    from tracker.store import embedded  # noqa: PLC0415 - pulls in pgserver only when needed

    log.info(
        "using embedded PostgreSQL in %s (TRACKER_DATABASE_URL is unset)",
        (settings.data_dir / "pgdata").resolve(),
    )
    return embedded.start(settings.data_dir)


def _serve(settings: Settings) -> int:
    from tracker.http.server import run  # noqa: PLC0415 - keep `tracker --help` fast

    url = database_url(settings)
    try:
        return run(settings, url)
    except Unavailable:
        # The cause is already logged, once per attempt; a traceback would add nothing.
        log.error("the database did not answer within %ss; giving up", settings.start_timeout)  # noqa: TRY400
        return 1


def _migrate(settings: Settings) -> int:
    from tracker.http.app import connect  # noqa: PLC0415

    async def apply() -> None:
        database = await connect(database_url(settings), settings)
        await database.close()

    try:
        asyncio.run(apply())
    except Unavailable:
        log.error("the database did not answer within %ss", settings.start_timeout)  # noqa: TRY400
        return 1
    log.info("database is up to date")
    return 0


def _replay(settings: Settings, *, check: bool = False) -> int:
    from tracker.cli_replay import run  # noqa: PLC0415

    return run(settings, database_url(settings), check=check)
