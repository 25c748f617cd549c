"""`tracker reconcile [--task ID] [--dry-run]`: one pass of the IoTDA reconciler, then exit."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from tracker.cli.common import EXIT_CODES, FAILED, OK, USAGE, database
from tracker.config import Settings
from tracker.iotda.credentials import Credentials
from tracker.store.group_commit import GroupCommit


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    reconcile = commands.add_parser(
        "reconcile",
        parents=[common],
        help="read IoTDA's upgrade tasks and their devices once, and append what changed",
        description="One pass of what `tracker serve` does in the background when "
        "TRACKER_IOTDA_ENDPOINT, _PROJECT_ID, _AK and _SK are set: find the upgrade tasks (from "
        "pushes, and ListBatchTasks for TRACKER_IOTDA_APP_IDS), read each one that is due in "
        "full through ShowBatchTask within TRACKER_IOTDA_RATE requests a second, and append "
        "each change of a task or of a device's subtask to the log. Exits 1 if another process "
        "is reconciling (they would spend the budget twice).",
        epilog=EXIT_CODES,
    )
    reconcile.add_argument(
        "--task", metavar="ID", help="read only this task, in full from its first page"
    )
    reconcile.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be appended; append nothing, remember nothing",
    )
    reconcile.set_defaults(run=run, log_default="WARNING", speaker="reconcile")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from tracker.amqp.endpoint import Misconfigured  # noqa: PLC0415 - keep `--help` fast
    from tracker.iotda.settings import credentials  # noqa: PLC0415

    try:
        platform = credentials(settings)
    except Misconfigured as refused:
        print(f"tracker reconcile: {refused}", file=sys.stderr)
        return USAGE
    if platform is None:
        print(
            "tracker reconcile: set TRACKER_IOTDA_ENDPOINT, TRACKER_IOTDA_PROJECT_ID, "
            'TRACKER_IOTDA_AK and TRACKER_IOTDA_SK (README, "IoTDA: per-device status")',
            file=sys.stderr,
        )
        return USAGE
    return asyncio.run(_pass(settings, platform, args.task, dry=args.dry_run))


async def _pass(settings: Settings, platform: Credentials, task: str | None, *, dry: bool) -> int:
    from tracker.iotda.api import Denied, PlatformApi, PlatformError  # noqa: PLC0415 - Huawei's SDK
    from tracker.iotda.budget import Budget  # noqa: PLC0415
    from tracker.iotda.reconciler import Reconciler  # noqa: PLC0415
    from tracker.iotda.settings import app_ids  # noqa: PLC0415
    from tracker.store import iotda  # noqa: PLC0415

    started = time.monotonic()
    async with database(settings) as db, PlatformApi(platform) as api:
        appends = None if dry else GroupCommit(db)
        reconciler = Reconciler(db, api, Budget(settings.iotda_rate), appends, app_ids(settings))
        try:
            if dry:
                tally = await reconciler.once(task)
            else:
                async with iotda.exclusive(db):
                    tally = await reconciler.once(task)
        except iotda.Busy as busy:
            print(f"tracker reconcile: {busy}; try again once it stops", file=sys.stderr)
            return FAILED
        except Denied as error:
            print(f"tracker reconcile: IoTDA refused the credentials: {error}", file=sys.stderr)
            return FAILED
        except PlatformError as error:
            print(f"tracker reconcile: IoTDA: {error}", file=sys.stderr)
            return FAILED
        finally:
            if appends is not None:
                await appends.close()
    for event in tally.events:
        print(f"would append {event.event_type} {event.stream_id}: {event.raw.decode()}")
    verb = "would append" if dry else "appended"
    counts = ", ".join(f"{n:,} {kind}" for kind, n in sorted(tally.appended.items())) or "nothing"
    print(
        f"reconcile: {tally.tasks:,} task reads, {tally.requests:,} requests in "
        f"{time.monotonic() - started:.1f} s; {verb} {counts}"
        + (f"; {tally.skipped:,} entries refused by the models" if tally.skipped else "")
    )
    return OK
