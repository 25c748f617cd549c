"""The `tracker` command: parses, reads settings, and hands over to one command module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import asyncpg

from tracker import __version__
from tracker.cli import (
    guards,
    operations,
    prune,
    prune_unrecognised,
    read,
    readmit,
    reconcile,
    replay,
    server,
    sessions,
    transfer,
    verify,
)
from tracker.cli.common import EXIT_CODES, FAILED, NOT_FOUND, UNAVAILABLE
from tracker.cli.flags import add_setting_flags, settings_of
from tracker.cli.table import shown
from tracker.store.errors import NotFound, Unavailable

log = logging.getLogger("tracker")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = settings_of(args)
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        code: int = args.run(settings, args)
    except NotFound as missing:
        print(f"{args.speaker}: {shown(str(missing))}", file=sys.stderr)
        return NOT_FOUND
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
    add_setting_flags(common, "every")
    # People reading state want answers, not progress chatter: quieter unless asked. A command
    # names itself on a line saying what was not found.
    common.set_defaults(log_default="WARNING", speaker="tracker")
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
        reconcile,
        guards,
    ):
        module.add_commands(commands, common)
    return top
