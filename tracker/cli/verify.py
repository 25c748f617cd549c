"""`tracker verify`: recompute every stream's hash chain; exit 1 if any event breaks it."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, Literal

from tracker.cli.common import EXIT_CODES, FAILED, OK, USAGE, database_url
from tracker.config import Settings
from tracker.store import checkpoint as checkpoints
from tracker.store import horizon
from tracker.store.archive import Archive
from tracker.store.archive import Unreadable as ArchiveUnreadable
from tracker.store.verify import ChainReport, NotVerifiable, verify


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    command = commands.add_parser(
        "verify",
        parents=[common],
        help="check that no logged event was altered, removed or reordered",
        description="Recompute every stream's hash chain (each event's hash covers the "
        "previous hash of its stream and every stored field of the event: position, stream, "
        "type, receive and platform times, readmission, exact bytes) and name every event that "
        "breaks it: any of those altered, an event removed or reordered within its stream. Exit "
        "1 if any does. Events logged before migration 011 are linked by their body alone. The "
        "chains alone do not see the last events of a stream removed, or a whole stream, or a "
        "stream's chain rewritten consistently: --against a checkpoint does, up to the "
        "checkpoint's position. An event whose body was pruned (tracker prune-unrecognised) is "
        "checked against the seal recorded then, or with --archive against its archived body. "
        "Read-only: it never migrates or writes, and runs as a role that may only SELECT.",
        epilog=EXIT_CODES,
    )
    command.add_argument(
        "--against",
        metavar="FILE",
        type=Path,
        help="also prove the log still extends this checkpoint (from `tracker checkpoint`, "
        "signed with TRACKER_CHECKPOINT_KEY): catches the last events of a stream or a whole "
        "stream removed, and a chain rewritten consistently (whatever it hides), in the log up "
        "to the checkpoint",
    )
    command.add_argument(
        "--archive",
        metavar="FILE",
        type=Path,
        action="append",
        help="an archive written by `tracker prune-unrecognised` (repeat for several): the "
        "links of the pruned events it holds are recomputed from their bodies, which must be "
        "the ones pruned; without it, a pruned event's stored hash is taken as its link",
    )
    command.set_defaults(run=run, log_default="WARNING")

    checkpoint = commands.add_parser(
        "checkpoint",
        parents=[common],
        help="print a signed statement of the whole log's state, to keep elsewhere",
        description="Print one line of JSON: the last position, the number of events and a "
        "head hash over every stored field of every event up to it, signed with HMAC-SHA256 "
        "under TRACKER_CHECKPOINT_KEY. Keep it (and the key) away from the database: `tracker "
        "verify --against FILE` later proves the log still extends it. Read-only.",
        epilog=EXIT_CODES,
    )
    checkpoint.set_defaults(run=take_checkpoint, log_default="WARNING")


def take_checkpoint(settings: Settings, _: argparse.Namespace) -> int:
    if not settings.checkpoint_key:
        print("checkpoint: set TRACKER_CHECKPOINT_KEY to sign it", file=sys.stderr)
        return USAGE
    url = database_url(settings)
    try:
        taken = asyncio.run(checkpoints.take(url, settings.checkpoint_key))
    except horizon.Behind as behind:
        print(f"checkpoint: refused: {behind}", file=sys.stderr)
        return FAILED
    sys.stdout.buffer.write(taken.to_json() + b"\n")
    print(
        f"checkpoint: {taken.events:,} events up to position {taken.position:,}",
        file=sys.stderr,
    )
    return OK


def run(settings: Settings, args: argparse.Namespace) -> int:
    key: str | None = settings.checkpoint_key
    checkpoint = None
    if args.against is not None:
        if not key:
            print("verify: set TRACKER_CHECKPOINT_KEY to check a checkpoint", file=sys.stderr)
            return USAGE
        try:
            checkpoint = checkpoints.parse(Path(args.against).read_bytes())
        except (OSError, checkpoints.Unreadable) as error:
            print(f"verify: {args.against}: {error}", file=sys.stderr)
            return USAGE
    # The database as it is: verify never migrates, and reads in read-only transactions only.
    url = database_url(settings)
    archive = _archive(args.archive)
    if archive is False:
        return USAGE
    verdict = _verified(url, archive)
    if verdict is None:
        return FAILED
    if sys.stderr.isatty() and verdict.events >= 100_000:
        print(file=sys.stderr)
    _report(verdict)
    if checkpoint is None or key is None:
        return FAILED if verdict.breaks else OK
    differences = asyncio.run(checkpoints.differences(url, key, checkpoint))
    for difference in differences:
        print(f"checkpoint: {difference}")
    if not differences:
        print(
            f"verify: the log extends the checkpoint of {checkpoint.taken_at} "
            f"({checkpoint.events:,} events up to position {checkpoint.position:,})"
        )
    return FAILED if verdict.breaks or differences else OK


def _verified(url: str, archive: Archive | None) -> ChainReport | None:
    """Every chain checked (None: the database holds no chained log, said why)."""
    try:
        return asyncio.run(verify(url, _progress if sys.stderr.isatty() else None, archive))
    except NotVerifiable as why:
        print(f"verify: {why}", file=sys.stderr)
        return None
    finally:
        if archive is not None:
            archive.close()


def _archive(paths: list[Path] | None) -> Archive | Literal[False] | None:
    """The archives to check pruned bodies against (None: none given; False: unreadable)."""
    if not paths:
        return None
    try:
        return Archive(paths)
    except (OSError, ArchiveUnreadable) as error:
        print(f"verify: {error}", file=sys.stderr)
        return False


def _report(verdict: ChainReport) -> None:
    for broken in verdict.breaks:
        print(
            f"tampered: position {broken.position} ({broken.stream_type} "
            f"{broken.stream_id!r}): {broken.reason}"
        )
    counted = f"{verdict.events:,} events in {verdict.streams:,} streams"
    if verdict.breaks:
        print(f"verify: {len(verdict.breaks)} of {counted} break their stream's hash chain")
    else:
        print(f"verify: {counted}; every hash chain is intact")
    if verdict.pruned:
        checked = (
            f"{verdict.from_archive:,} of them recomputed from the archive"
            if verdict.from_archive
            else "each checked against the seal recorded when it was pruned (--archive FILE "
            "recomputes their links)"
        )
        print(f"verify: {verdict.pruned:,} bodies pruned (archived); {checked}")


def _progress(done: int) -> None:
    print(f"\rverifying: {done:,} events", end="", file=sys.stderr, flush=True)
