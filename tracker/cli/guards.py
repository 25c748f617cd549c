"""`tracker guards ...` and `tracker alerts`: the guards and their alerts for people at a
terminal, through the same store calls and documents as the API (DESIGN.md, "Guards and
alerts"). Run where the database is: whoever may run them may already write anything there, so
no admin token is asked; a definition with a secret is read from a file or stdin, never from
the command line (`ps` shows it to everyone)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from tracker import documents as doc
from tracker.amqp.endpoint import Misconfigured
from tracker.cli.common import EXIT_CODES, FAILED, NOT_FOUND, OK, USAGE
from tracker.cli.read import print_json, run_with
from tracker.cli.table import render
from tracker.config import Settings
from tracker.domain.guards import NAME_RULE, Definition, Guard, is_name, problems
from tracker.iotda.settings import credentials
from tracker.store import alerts, guard_changes, guards, outbox
from tracker.store.database import Database
from tracker.webhooks import targets

# The API's rule for a name (http/guards.py), kept here too: an alert's events carry the name
# and refuse any other, so a guard named otherwise would fail the alerts of every rollout it
# scopes, other guards' included (store/alerting.py decides a rollout's guards together).


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON documents")
    command = commands.add_parser(
        "guards",
        parents=[common],
        help="rollout guards: list, show, put, delete; retry a dead webhook",
        description="Guards watch every rollout they scope and alert (and may stop an IoTDA "
        "task) when their condition becomes true.",
        epilog=EXIT_CODES,
    )
    actions = command.add_subparsers(title="actions", required=True, metavar="ACTION")
    listed = actions.add_parser("list", parents=[common, output], help="every guard")
    listed.set_defaults(run=_list)
    show = actions.add_parser("show", parents=[common, output], help="one guard")
    show.add_argument("name")
    show.set_defaults(run=_show)
    put = actions.add_parser(
        "put",
        parents=[common, output],
        help="create or replace a guard from a JSON definition (PUT /v1/guards/{name}'s body)",
    )
    put.add_argument("name")
    put.add_argument(
        "--file", required=True, metavar="PATH", help="the definition; - reads it from stdin"
    )
    put.set_defaults(run=_put)
    delete = actions.add_parser("delete", parents=[common], help="delete a guard")
    delete.add_argument("name")
    delete.set_defaults(run=_delete)
    dead = actions.add_parser(
        "dead", parents=[common, output], help="webhook deliveries given up on"
    )
    dead.set_defaults(run=_dead)
    retry = actions.add_parser("retry", parents=[common], help="send a dead letter again")
    retry.add_argument("id", help="the alert change's id (see `tracker guards dead`)")
    retry.set_defaults(run=_retry)

    shown = commands.add_parser(
        "alerts",
        parents=[common, output],
        help="the guards' alerts, the latest fired first",
        epilog=EXIT_CODES,
    )
    shown.add_argument("--state", choices=("firing", "resolved"))
    shown.add_argument("--operation-id")
    shown.add_argument("--guard")
    shown.add_argument("--limit", type=int, default=100)
    shown.set_defaults(run=_alerts)


def _rows(found: list[Guard]) -> list[list[object]]:
    return [
        [
            g.name,
            ", ".join(f"{k}={v}" for k, v in g.scope.model_dump(exclude_none=True).items())
            or "every rollout",
            ", ".join(f"{k}={v}" for k, v in g.when.model_dump().items()),
            g.webhook_url,
            "yes" if g.stop_task else "no",
        ]
        for g in found
    ]


GUARD_HEADERS = ("GUARD", "SCOPE", "WHEN", "WEBHOOK", "STOP TASK")


def _list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        found = await guards.listed(db)
        if args.json:
            return print_json([doc.GuardDocument.of(g).model_dump(mode="json") for g in found])
        print(render(GUARD_HEADERS, _rows(found)) if found else "no guards")
        return OK

    return run_with(settings, work)


def _show(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        found = await guards.one(db, args.name)
        if found is None:
            print(f"guards: no guard named {args.name!r}", file=sys.stderr)
            return NOT_FOUND
        if args.json:
            return print_json(doc.GuardDocument.of(found).model_dump(mode="json"))
        print(render(GUARD_HEADERS, _rows([found])))
        return OK

    return run_with(settings, work)


class _Refused(Exception):  # noqa: N818 - reads as "the input is refused"
    """Input `put` refuses before it touches the database: why, for people, and the exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def _definition(settings: Settings, args: argparse.Namespace) -> Definition:
    """The definition `put` is to write, checked as `PUT /v1/guards/{name}` checks it (all but
    the webhook's URL, which may need a lookup); `_Refused` otherwise."""
    if not is_name(args.name):
        raise _Refused(f"{args.name!r} is not a guard's name: {NAME_RULE}")
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as unreadable:
        raise _Refused(f"cannot read the definition: {unreadable}") from None
    try:
        definition = Definition.model_validate(orjson.loads(raw))
    except orjson.JSONDecodeError as invalid:
        raise _Refused(f"the definition is not JSON: {invalid}") from None
    except ValidationError as invalid:
        said = "; ".join(f"{p['field']}: {p['problem']}" for p in problems(invalid))
        raise _Refused(f"the definition is refused: {said}") from None
    if definition.stop_task:
        try:
            platform = credentials(settings)
        except Misconfigured as half:  # some of TRACKER_IOTDA_* but not all: as `reconcile`
            raise _Refused(str(half), USAGE) from None
        if platform is None:
            raise _Refused("stop_task needs TRACKER_IOTDA_* (IoTDA's API)")
    return definition


def _put(settings: Settings, args: argparse.Namespace) -> int:
    try:
        definition = _definition(settings, args)
    except _Refused as refused:
        print(f"guards: {refused}", file=sys.stderr)
        return refused.code

    async def work(db: Database) -> int:
        if definition.webhook is not None:
            try:
                await targets.check(
                    definition.webhook.url, targets.allowed_hosts(settings.webhook_hosts)
                )
            except targets.Refused as refused:
                print(f"guards: the webhook's URL is refused: {refused}", file=sys.stderr)
                return FAILED
        guard, created = await guard_changes.put(db, args.name, definition)
        if args.json:
            return print_json(doc.GuardDocument.of(guard).model_dump(mode="json"))
        print(f"guard {guard.name} {'created' if created else 'replaced'}")
        return OK

    return run_with(settings, work)


def _delete(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        if not await guard_changes.delete(db, args.name):
            print(f"guards: no guard named {args.name!r}", file=sys.stderr)
            return NOT_FOUND
        print(f"guard {args.name} deleted (its alerts stay in the log)")
        return OK

    return run_with(settings, work)


def _dead(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        found = await outbox.dead_letters(db, 0, 1000)
        if args.json:
            return print_json([doc.DeadLetterDocument.of(d).model_dump(mode="json") for d in found])
        rows = [[d.id, d.secret_ref, d.url, d.attempts, d.died_at, d.last_error] for d in found]
        headers = ("ID", "GUARD", "URL", "ATTEMPTS", "DIED", "LAST ERROR")
        print(render(headers, rows) if rows else "no dead letters")
        return OK

    return run_with(settings, work)


def _retry(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        await outbox.retry(db, args.id)  # NotFound: exit 3, said by the CLI's main
        print(f"webhook {args.id} queued again")
        return OK

    return run_with(settings, work)


def _alerts(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        where = alerts.AlertFilter(args.state, args.operation_id, args.guard)
        found, _ = await alerts.listed(db, where, None, max(1, min(args.limit, 1000)))
        documents = [doc.AlertDocument.of(a) for a in found]
        if args.json:
            return print_json([d.model_dump(mode="json") for d in documents])
        rows = [
            [
                d.guard,
                d.operation_id,
                d.track,
                d.state.upper() if d.state == "firing" else d.state,
                f"{d.value:g} / {d.threshold:g}",
                d.fired_at,
                d.resolved_at,
                None if d.stop is None else d.stop.outcome,
            ]
            for d in documents
        ]
        headers = (
            "GUARD",
            "OPERATION",
            "TRACK",
            "STATE",
            "VALUE / THRESHOLD",
            "FIRED",
            "RESOLVED",
            "STOP",
        )
        print(render(headers, rows) if rows else "no alerts")
        return OK

    return run_with(settings, work)
