"""Commands for upgrade operations: `operation ID [--devices]` and `operations`.

They call the same store queries as the HTTP API and `--json` prints the same documents.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tracker import documents as doc
from tracker.cli.common import EXIT_CODES, FAILED, OK, USAGE, duration
from tracker.cli.read import print_json, progress_table, run_with
from tracker.cli.table import ident, render, when
from tracker.config import Settings
from tracker.domain.notifications import RESULTS, TRACKS
from tracker.store import rollups
from tracker.store.database import Database
from tracker.store.listing import present
from tracker.store.queries import STORED_MEMBER_STATES

MEMBER_STATES = list(STORED_MEMBER_STATES[1:])  # OceanConnect's states, IoTDA's statuses
PLATFORMS = {"oceanconnect": "OceanConnect", "iotda": "IoTDA"}


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
    operation.add_argument(
        "--state",
        choices=MEMBER_STATES,
        metavar="STATE",
        help="with --devices: state in it (an IoTDA task's: the subtask's status): "
        + ", ".join(MEMBER_STATES),
    )
    operation.add_argument("--result", choices=RESULTS, help="with --devices")
    operation.add_argument("--error-code", help="with --devices: the error code of that result")
    operation.add_argument(
        "--stuck-for",
        type=duration,
        metavar="DURATION",
        help="count the devices busy for at least: 90s, 15m, 1h, 2d; with --devices (an IoTDA "
        "task's), list them, longest first",
    )
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
        found = await rollups.operation(db, args.operation_id, args.track)
        if args.stuck_for is not None:
            [found] = await rollups.with_stuck(db, [found], args.stuck_for)
        document = doc.OperationDocument.of(found)
        if args.json:
            return print_json(document.model_dump(mode="json"))
        print(
            f"operation {ident(document.operation_id)} ({document.track}, app "
            f"{ident(document.app_id)}): {document.devices} devices, first seen "
            f"{when(document.first_seen_at)}, last active {when(document.last_activity_at)}"
        )
        if document.task_status is None:
            print(f"platform {PLATFORMS[document.platform]}")
        else:
            print(f"platform {PLATFORMS[document.platform]}: batch task {document.task_status}")
        print(render(["STATE", "DEVICES"], list(document.states.items())))
        print()
        print(render(["RESULT", "DEVICES"], list(document.results.items())))
        if document.stuck is not None:
            print(f"\nstuck for {args.stuck_for:g} s or more: {document.stuck}")
        _print_progress(found, document)
        if document.errors:
            print()
            rows = [(e.error_code, e.result_desc, e.devices) for e in document.errors]
            print(render(["ERROR", "DESCRIPTION", "DEVICES"], rows))
        if document.target_versions:
            print()
            print(render(["TARGET VERSION", "DEVICES"], list(document.target_versions.items())))
        return OK

    return run_with(settings, work)


def _print_progress(found: rollups.Rollup, document: doc.OperationDocument) -> None:
    """An IoTDA task's own counters beside its members', and whether they disagree."""
    if document.task_progress is None:
        if document.platform == "iotda":
            print("\nIoTDA's own counters (task_progress): not read yet")
        return
    print(f"\nIoTDA's own counters (task_progress), read {when(document.progress_at)}:")
    print(progress_table(document.task_progress, found.members_progress._asdict()))
    if document.progress_disagrees:
        print(
            "DISAGREES: IoTDA's counters differ from the devices the tracker has read "
            "(a sweep may still be under way)"
        )


def _agreement(disagrees: bool | None) -> str | None:
    return None if disagrees is None else "DISAGREE" if disagrees else "agree"


def _members(settings: Settings, args: argparse.Namespace) -> int:
    filters = present(
        operation_id=args.operation_id,
        track=args.track,
        state=args.state,
        result=args.result,
        error_code=args.error_code,
        stuck_for=args.stuck_for,
    )
    if args.stuck_for is not None and (args.state or args.result or args.error_code):
        print(
            "--stuck-for lists busy devices: no --state, --result or --error-code with it",
            file=sys.stderr,
        )
        return USAGE

    async def work(db: Database) -> int:
        try:
            found, last = await rollups.members(db, filters, None, args.limit)
        except rollups.NotIoTDA as refused:
            print(refused, file=sys.stderr)
            return FAILED
        documents = [doc.OperationMemberDocument.of(m) for m in found]
        if args.json:
            return print_json([d.model_dump(mode="json") for d in documents])
        rows = [
            (
                ident(d.device_id),
                d.track,
                d.state,
                d.state_since,
                d.result,
                d.error_code,
                d.target_version,
                d.updated_at,
            )
            for d in documents
        ]
        headers = ["DEVICE", "TRACK", "STATE", "SINCE", "RESULT", "ERROR", "TARGET", "UPDATED"]
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
                PLATFORMS[d.platform],
                " ".join(f"{s} {n}" for s, n in d.states.items()),
                d.results["SUCCESS"],
                d.results["FAIL"],
                _agreement(d.progress_disagrees),
                d.last_activity_at,
            )
            for d in documents
        ]
        headers = [
            "OPERATION",
            "TRACK",
            "APP",
            "DEVICES",
            "PLATFORM",
            "STATES",
            "SUCCESS",
            "FAIL",
            "IOTDA COUNTERS",
            "ACTIVE",
        ]
        print(render(headers, rows))
        more = " (there are more: raise --limit)" if last is not None else ""
        print(f"{len(rows)} operations{more}", file=sys.stderr)
        return OK

    return run_with(settings, work)
