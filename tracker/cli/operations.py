"""Commands for upgrade operations: `operation ID [--devices]` and `operations`.

They call the same store queries as the HTTP API and `--json` prints the same documents.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tracker import documents as doc
from tracker.cli.common import EXIT_CODES, OK
from tracker.cli.read import STATE_NAMES, print_json, run_with
from tracker.cli.table import ident, render, when
from tracker.config import Settings
from tracker.domain.notifications import RESULTS, TRACKS
from tracker.store import rollups
from tracker.store.database import Database
from tracker.store.listing import present


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON document")
    parents = [common, output]

    operation = commands.add_parser(
        "operation",
        parents=parents,
        help="an upgrade operation's rollup, or with --devices its members",
        epilog=EXIT_CODES,
    )
    operation.add_argument("operation_id")
    operation.add_argument("--track", choices=TRACKS)
    operation.add_argument(
        "--devices", action="store_true", help="list the devices that took part, by id"
    )
    operation.add_argument("--state", choices=STATE_NAMES, help="with --devices: state in it")
    operation.add_argument("--result", choices=RESULTS, help="with --devices")
    operation.add_argument("--error-code", help="with --devices: the error code of that result")
    operation.add_argument("--limit", type=int, default=100, help="at most this many (100)")
    operation.set_defaults(run=_operation)

    listed = commands.add_parser(
        "operations",
        parents=parents,
        help="upgrade operations, the most recently active first",
        epilog=EXIT_CODES,
    )
    listed.add_argument("--track", choices=TRACKS)
    listed.add_argument("--app", help="application id")
    listed.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    listed.set_defaults(run=_operations)


def _operation(settings: Settings, args: argparse.Namespace) -> int:
    if args.devices:
        return _members(settings, args)

    async def work(db: Database) -> int:
        document = doc.OperationDocument.of(
            await rollups.operation(db, args.operation_id, args.track)
        )
        if args.json:
            return print_json(document.model_dump(mode="json"))
        print(
            f"operation {ident(document.operation_id)} ({document.track}, app "
            f"{ident(document.app_id)}): {document.devices} devices, first seen "
            f"{when(document.first_seen_at)}, last active {when(document.last_activity_at)}"
        )
        print(render(["STATE", "DEVICES"], list(document.states.items())))
        print()
        print(render(["RESULT", "DEVICES"], list(document.results.items())))
        if document.errors:
            print()
            rows = [(e.error_code, e.result_desc, e.devices) for e in document.errors]
            print(render(["ERROR", "DESCRIPTION", "DEVICES"], rows))
        if document.target_versions:
            print()
            print(render(["TARGET VERSION", "DEVICES"], list(document.target_versions.items())))
        return OK

    return run_with(settings, work)


def _members(settings: Settings, args: argparse.Namespace) -> int:
    filters = present(
        operation_id=args.operation_id,
        track=args.track,
        state=args.state,
        result=args.result,
        error_code=args.error_code,
    )

    async def work(db: Database) -> int:
        found, last = await rollups.members(db, filters, None, args.limit)
        documents = [doc.OperationMemberDocument.of(m) for m in found]
        if args.json:
            return print_json([d.model_dump(mode="json") for d in documents])
        rows = [
            (
                ident(d.device_id),
                d.track,
                d.state,
                d.result,
                d.error_code,
                d.target_version,
                d.updated_at,
            )
            for d in documents
        ]
        headers = ["DEVICE", "TRACK", "STATE", "RESULT", "ERROR", "TARGET", "UPDATED"]
        print(render(headers, rows))
        more = " (there are more: raise --limit)" if last is not None else ""
        print(f"{len(rows)} devices in operation {ident(args.operation_id)}{more}", file=sys.stderr)
        return OK

    return run_with(settings, work)


def _operations(settings: Settings, args: argparse.Namespace) -> int:
    filters = present(track=args.track, app_id=args.app)

    async def work(db: Database) -> int:
        found, last = await rollups.operations(db, filters, None, args.limit)
        documents = [doc.OperationDocument.of(r) for r in found]
        if args.json:
            return print_json([d.model_dump(mode="json") for d in documents])
        rows = [
            (
                ident(d.operation_id),
                d.track,
                ident(d.app_id),
                d.devices,
                " ".join(f"{s} {n}" for s, n in d.states.items()),
                d.results["SUCCESS"],
                d.results["FAIL"],
                d.last_activity_at,
            )
            for d in documents
        ]
        headers = ["OPERATION", "TRACK", "APP", "DEVICES", "STATES", "SUCCESS", "FAIL", "ACTIVE"]
        print(render(headers, rows))
        more = " (there are more: raise --limit)" if last is not None else ""
        print(f"{len(rows)} operations{more}", file=sys.stderr)
        return OK

    return run_with(settings, work)
