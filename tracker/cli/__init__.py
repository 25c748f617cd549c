"""The `tracker` command: parses, reads settings, and hands over to one command module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from tracker import __version__
from tracker.cli import (
    operations,
    prune,
    prune_unrecognised,
    read,
    readmit,
    replay,
    server,
    sessions,
    transfer,
    verify,
)
from tracker.cli.common import EXIT_CODES, FAILED, UNAVAILABLE
from tracker.config import Settings
from tracker.store.errors import Unavailable

log = logging.getLogger("tracker")
FLAGS = (
    "database_url",
    "data_dir",
    "host",
    "port",
    "max_body_bytes",
    "workers",
    "tls_cert",
    "tls_key",
    "insecure_open",
    "trust_proxy",
    "allow_unsafe_durability",
)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env().with_overrides(
        **{name: getattr(args, name, None) for name in FLAGS}
    )
    # People reading state want answers, not progress chatter: quieter unless asked.
    level = args.log_level or os.environ.get("TRACKER_LOG_LEVEL") or args.log_default
    settings = settings.with_overrides(log_level=level.upper())  # `serve --workers` passes it on
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.run(settings, args)
    except Unavailable:
        # The cause is already logged; a traceback would add nothing.
        log.error("the database did not answer within %ss", settings.start_timeout)  # noqa: TRY400
        return UNAVAILABLE
    except asyncpg.InsufficientPrivilegeError as refused:
        # A least-privilege role where the owner is needed (import and readmit keep times and
        # links, which only the owner may: sql/016_trust_boundaries.sql).
        log.error(  # noqa: TRY400 - the database's own words say it all
            "the database refused: %s; this command needs the role that owns the log (the one "
            "that ran `tracker migrate`), not the runtime role",
            refused,
        )
        return FAILED
    return code


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="tracker",
        description="Event-sourced tracker for device upgrades pushed by Huawei IoT platforms.",
        epilog=EXIT_CODES,
    )
    top.add_argument("--version", action="version", version=f"tracker {__version__}")
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
    common.set_defaults(log_default="WARNING")
    commands = top.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for module in (
        server,
        replay,
        verify,
        read,
        operations,
        transfer,
        readmit,
        prune,
        prune_unrecognised,
        sessions,
    ):
        module.add_commands(commands, common)
    return top
