"""Read commands for people: `device`, `task`, `devices` (and cli/operations.py's).

They call the same store queries as the HTTP API and `--json` prints the same documents.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from tracker import documents as doc
from tracker.cli.common import EXIT_CODES, OK, database, duration
from tracker.cli.table import ident, render, when
from tracker.config import Settings
from tracker.domain.device import DeviceTransition
from tracker.domain.notifications import RESULTS, TRACKS, UPGRADE_STATES, Track
from tracker.domain.suboperation import UpgradeResult
from tracker.store import queries
from tracker.store.database import Database

HISTORY_LIMIT = 10_000
STATE_NAMES = list(UPGRADE_STATES)


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print the API's JSON document")
    parents = [common, output]

    device = commands.add_parser(
        "device", parents=parents, help="one device: both upgrade tracks", epilog=EXIT_CODES
    )
    device.add_argument("device_id")
    device.add_argument("--history", action="store_true", help="also its audit trail")
    device.set_defaults(run=_device)

    task = commands.add_parser(
        "task", parents=parents, help="one batch task and its status", epilog=EXIT_CODES
    )
    task.add_argument("task_id")
    task.add_argument("--history", action="store_true", help="also its status history")
    task.set_defaults(run=_task)

    devices = commands.add_parser(
        "devices",
        parents=parents,
        help="devices on a track, filtered",
        description="List devices by id. --state, --operation, --result and --stuck-for look "
        "at --track (software unless given).",
        epilog=EXIT_CODES,
    )
    devices.add_argument("--track", choices=TRACKS)
    devices.add_argument("--state", choices=STATE_NAMES)
    devices.add_argument("--operation", help="current operation id")
    devices.add_argument("--app", help="application id")
    devices.add_argument("--result", choices=RESULTS, help="last result")
    devices.add_argument(
        "--stuck-for",
        type=duration,
        metavar="DURATION",
        help="not idle for at least: 90s, 15m, 1h, 2d",
    )
    devices.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    devices.set_defaults(run=_devices)


def run_with(settings: Settings, work: Any) -> int:  # noqa: ANN401 - a coroutine function
    async def go() -> int:
        async with database(settings) as db:
            code: int = await work(db)
            return code

    return asyncio.run(go())


def _device(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        document = doc.DeviceDocument.of(await queries.device(db, args.device_id))
        history = (
            await queries.device_transitions(db, args.device_id, 0, HISTORY_LIMIT)
            if args.history
            else []
        )
        if args.json:
            if args.history:
                items = [
                    doc.DeviceTransitionDocument.of(t).model_dump(mode="json") for t in history
                ]
                return print_json(
                    {"device": document.model_dump(mode="json"), "transitions": items}
                )
            return print_json(document.model_dump(mode="json"))
        print(
            f"device {ident(document.device_id)}  app {ident(document.app_id)}  "
            f"last position {document.last_position}  updated {when(document.updated_at)}"
        )
        rows = [
            _track_row(name, track)
            for name, track in (("software", document.software), ("firmware", document.firmware))
        ]
        print(render(["TRACK", "STATE", "SINCE", "OPERATION", "VERSION", "LAST RESULT"], rows))
        if document.tasks:
            print()
            print(_device_tasks(document.tasks))
        if args.history:
            print()
            print(
                render(
                    [
                        "POSITION",
                        "TRACK",
                        "KIND",
                        "FROM",
                        "TO",
                        "VALID",
                        "OPERATION",
                        "RECEIVED",
                        "NOTE",
                    ],
                    [
                        (
                            t.position,
                            t.track,
                            t.kind,
                            t.from_state,
                            t.to_state,
                            t.valid,
                            ident(t.operation_id),
                            t.received_at,
                            _note(t),
                        )
                        for t in history
                    ],
                )
            )
        return OK

    return run_with(settings, work)


def _device_tasks(tasks: list[doc.DeviceTaskDocument]) -> str:
    """The device's IoTDA subtasks, the latest first, as the document lists them."""
    rows = [
        (
            ident(t.task_id),
            t.track,
            t.status,
            t.state_since,
            t.error_code,
            t.error_msg,
            t.updated_at,
        )
        for t in tasks
    ]
    headers = ["IOTDA TASK", "TRACK", "STATUS", "SINCE", "ERROR", "MESSAGE", "UPDATED"]
    return render(headers, rows)


def _note(entry: DeviceTransition) -> str | None:
    """What an auditor should see besides the move: a result, and anything unusual."""
    notes = []
    if entry.kind == "subtask":
        notes.append("IoTDA, as read through its API")
    if entry.result is not None and entry.kind == "subtask":  # IoTDA's: no versions
        error = ": ".join(e for e in (entry.result.error_code, entry.result.result_desc) if e)
        notes.append(f"{entry.result.result} {error}".rstrip())
    elif entry.result is not None:
        notes.append(_outcome(entry.result))
    if entry.reason == "stale":
        notes.append("NOT APPLIED (stale: its sub-operation was past it)")
    elif entry.reason == "earlier_operation":
        notes.append("NOT APPLIED (earlier operation: counted there; the device is in another)")
    if entry.inconsistent:
        notes.append("INCONSISTENT (step and stepDesc disagree; step followed)")
    return "; ".join(notes) or None


def _outcome(r: UpgradeResult | doc.ResultDocument) -> str:
    anomaly = " ANOMALY" if r.anomaly else ""
    return f"{r.result} {r.source_version}->{r.target_version} now {r.current_version}{anomaly}"


def _track_row(name: str, track: doc.TrackDocument | None) -> tuple[object, ...]:
    if track is None:
        return (name, None, None, None, None, None)
    outcome = None if track.last_result is None else _outcome(track.last_result)
    operation = ident(track.operation_id)
    return (name, track.state, track.state_since, operation, track.version, outcome)


def _task(settings: Settings, args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        document = doc.TaskDocument.of(await queries.task(db, args.task_id))
        history = (
            await queries.task_transitions(db, args.task_id, 0, HISTORY_LIMIT)
            if args.history
            else []
        )
        if args.json:
            if args.history:
                items = [doc.TaskTransitionDocument.of(t).model_dump(mode="json") for t in history]
                return print_json({"task": document.model_dump(mode="json"), "transitions": items})
            return print_json(document.model_dump(mode="json"))
        print(
            f"task {ident(document.task_id)}  app {ident(document.app_id)}  "
            f"type {document.task_type}"
        )
        print(
            render(
                ["STATUS", "DESCRIPTION", "EVENT TIME", "POSITION", "UPDATED"],
                [
                    (
                        document.status,
                        document.status_desc,
                        when(document.event_time),
                        document.last_position,
                        document.updated_at,
                    )
                ],
            )
        )
        _print_sources(document)
        if args.history:
            print()
            print(
                render(
                    [
                        "POSITION",
                        "FROM",
                        "TO",
                        "VALID",
                        "APPLIED",
                        "SOURCE",
                        "EVENT TIME",
                        "RECEIVED",
                    ],
                    [
                        (
                            t.position,
                            t.from_status,
                            t.to_status,
                            t.valid,
                            t.applied,
                            t.source,
                            when(t.event_time),
                            t.received_at,
                        )
                        for t in history
                    ],
                )
            )
        return OK

    return run_with(settings, work)


def _print_sources(document: doc.TaskDocument) -> None:
    """What IoTDA's API said of the task: its counters, and statuses no push delivered."""
    if document.progress is not None:
        print()
        print(f"IoTDA's progress, read {when(document.progress_at)}:")
        print(progress_table(document.progress))
    if document.observed:
        print()
        print(f"pushed: {', '.join(document.pushed) or '-'}")
        print(f"seen by reconciliation: {', '.join(document.observed)}")
    if document.unpushed:
        print(f"NEVER PUSHED (a lost push): {', '.join(document.unpushed)}")


def progress_table(theirs: doc.ProgressDocument, ours: dict[str, int] | None = None) -> str:
    """IoTDA's counters of a task's subtasks, and beside them, if given, the members'."""
    names = doc.ProgressDocument.model_fields
    if ours is None:
        return render(["COUNTER", "IOTDA"], [(n, getattr(theirs, n)) for n in names])
    rows = [
        (n, getattr(theirs, n), ours[n], "" if getattr(theirs, n) == ours[n] else "DIFFERS")
        for n in names
    ]
    return render(["COUNTER", "IOTDA", "MEMBERS", ""], rows)


def _devices(settings: Settings, args: argparse.Namespace) -> int:
    track: Track = args.track or "software"
    where = queries.DeviceFilter(
        track, args.state, args.app, args.operation, args.result, args.stuck_for
    )

    async def work(db: Database) -> int:
        found, last = await queries.devices(db, where, None, args.limit)
        documents = [doc.DeviceDocument.of(d) for d in found]
        if args.json:
            return print_json([d.model_dump(mode="json") for d in documents])
        rows = []
        for d in documents:
            t = d.software if track == "software" else d.firmware
            if t is not None:
                result = t.last_result.result if t.last_result else None
                rows.append(
                    (
                        ident(d.device_id),
                        ident(d.app_id),
                        t.state,
                        t.state_since,
                        ident(t.operation_id),
                        t.version,
                        result,
                    )
                )
        print(
            render(["DEVICE", "APP", "STATE", "SINCE", "OPERATION", "VERSION", "LAST RESULT"], rows)
        )
        more = " (there are more: raise --limit)" if last is not None else ""
        print(f"{len(rows)} devices on the {track} track{more}", file=sys.stderr)
        return OK

    return run_with(settings, work)


def print_json(document: object) -> int:
    import json  # noqa: PLC0415

    print(json.dumps(document, indent=2, ensure_ascii=False))
    return OK
