"""`tracker sessions list` and `tracker sessions revoke (--all | ID)`: the dashboard's sessions.

A revocation is a row update in the database: every worker and host refuses the session at its
next request. `--all` also draws a new signing secret, so every cookie ever issued stops
verifying (each server reads the new secret within a second).
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from tracker.cli.common import EXIT_CODES, OK, database
from tracker.cli.table import render
from tracker.config import Settings
from tracker.store import sessions


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    group = commands.add_parser(
        "sessions",
        help="list or end the dashboard's sign-in sessions",
        description="The dashboard's sessions, opened by signing in with the read token. "
        "Sessions also end at sign-out, after 12 hours, and when TRACKER_READ_TOKEN changes.",
        epilog=EXIT_CODES,
    )
    actions = group.add_subparsers(title="actions", required=True, metavar="ACTION")
    listing = actions.add_parser(
        "list", parents=[common], help="every session, newest first", epilog=EXIT_CODES
    )
    listing.set_defaults(run=run_list, log_default="WARNING")
    revoke = actions.add_parser(
        "revoke",
        parents=[common],
        help="end one session (by its id, from `list`), or all of them",
        epilog=EXIT_CODES,
    )
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("session_id", nargs="?", metavar="ID", help="the session to end")
    which.add_argument(
        "--all",
        action="store_true",
        help="end every session and draw a new signing secret",
    )
    revoke.set_defaults(run=run_revoke, log_default="WARNING", speaker="sessions")


def run_list(settings: Settings, _: argparse.Namespace) -> int:
    async def work() -> list[sessions.Session]:
        async with database(settings) as db:
            return await sessions.listing(db)

    rows = asyncio.run(work())
    headers = ("ID", "STATE", "ISSUED", "EXPIRES", "REVOKED")
    print(render(headers, [(s.id, s.state, s.issued_at, s.expires_at, s.revoked_at) for s in rows]))
    return OK


def run_revoke(settings: Settings, args: argparse.Namespace) -> int:
    session_id: str | None = args.session_id

    async def work() -> int | bool:
        async with database(settings) as db:
            if session_id is None:
                return await sessions.revoke_all(db)
            return await sessions.revoke(db, session_id)

    outcome = asyncio.run(work())
    if session_id is None:
        print(f"sessions: ended {outcome} live sessions and drew a new signing secret")
    else:
        print(f"sessions: {session_id} {'revoked' if outcome else 'had already ended'}")
    return OK
