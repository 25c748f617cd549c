"""Checkpoints: a signed statement of the whole log's state, kept elsewhere, that the log must
still extend later (`tracker checkpoint`, `tracker verify --against FILE`).

The hash chains inside the log are per stream and cover the bodies: a superuser could still cut
a stream's tail, delete a stream, move an event to another stream, change its times, or rewrite
a stream's chain consistently. A checkpoint closes that: its `head` is a hash over every event
up to `position`, in log order, and over every stored field of each (position, stream, type,
receive and platform times, where it was readmitted from, and the body's SHA-256). Whatever
changes in that prefix of the log changes the head; events appended after it do not. The
statement is signed with HMAC-SHA256 under `TRACKER_CHECKPOINT_KEY`, so it cannot be forged
from the database alone; keep it (and the key) away from the database.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from tracker.store import bodies, horizon, prune

VERSION = 1
NOT_GENUINE = (
    "the checkpoint's signature does not match: it was altered, or signed with another "
    "TRACKER_CHECKPOINT_KEY"
)
MALFORMED = (
    "the checkpoint's signature is malformed (not 64 hex digits, as `tracker checkpoint` "
    "writes it): it was altered"
)
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
PREFIX = """
SELECT position, stream_type, stream_id, event_type, received_at, occurred_at, readmitted_from,
       raw, codec, {pruned} AS pruned_sha256
FROM events WHERE position <= $1 ORDER BY position
"""
PRUNABLE = "SELECT to_regclass('pruned_bodies') IS NOT NULL"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    version: int
    position: int  # the last event covered
    events: int  # how many events the log held up to it
    head: str  # hex sha256 over those events' fields, in log order
    taken_at: str
    signature: str = ""  # hex HMAC-SHA256 of the other fields, under the checkpoint key

    def statement(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "signature"}
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)

    def signed(self, key: str) -> Checkpoint:
        return replace(self, signature=_sign(key, self.statement()))

    def well_formed(self) -> bool:
        """A signature as `signed` writes it. The file is the reader's: anything else (a
        number, null, non-ASCII text) made compare_digest raise TypeError, a traceback."""
        return isinstance(self.signature, str) and _SIGNATURE.fullmatch(self.signature) is not None

    def genuine(self, key: str) -> bool:
        if not self.well_formed():
            return False
        return hmac.compare_digest(self.signature, _sign(key, self.statement()))

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, text: bytes | str) -> Checkpoint:
        document: dict[str, Any] = orjson.loads(text)
        return cls(**document)


class Unreadable(Exception):  # noqa: N818 - a file that is not a checkpoint
    pass


def parse(text: bytes) -> Checkpoint:
    try:
        found = Checkpoint.from_json(text)
    except (orjson.JSONDecodeError, TypeError) as error:
        raise Unreadable(f"not a checkpoint of tracker: {error}") from None
    if found.version != VERSION:
        raise Unreadable(f"a checkpoint of version {found.version}; this tracker reads {VERSION}")
    return found


async def take(url: str, key: str) -> Checkpoint:
    """The log as it is now, up to its horizon (horizon.py: no event below can still commit and
    make a later check see events the checkpoint did not count), signed."""
    async with _reading(url) as (conn, last):
        events, head = await _head(conn, last)
    taken = datetime.now(UTC).isoformat()
    return Checkpoint(VERSION, last, events, head, taken).signed(key)


async def differences(url: str, key: str, checkpoint: Checkpoint) -> list[str]:
    """Why the log no longer extends `checkpoint` (empty: it does)."""
    if not checkpoint.well_formed():
        return [MALFORMED]
    if not checkpoint.genuine(key):
        return [NOT_GENUINE]
    async with _reading(url) as (conn, _):
        events, head = await _head(conn, checkpoint.position)
    found = []
    if events != checkpoint.events:
        found.append(
            f"the log holds {events:,} events up to position {checkpoint.position:,} where the "
            f"checkpoint counted {checkpoint.events:,}: events were removed (or inserted)"
        )
    if head != checkpoint.head:
        found.append(
            f"the events up to position {checkpoint.position:,} are not those the checkpoint "
            "saw: a body, time, stream or type was changed, or events were removed or moved"
        )
    return found


def _sign(key: str, statement: bytes) -> str:
    return hmac.new(key.encode(), statement, hashlib.sha256).hexdigest()


@asynccontextmanager
async def _reading(url: str) -> AsyncIterator[tuple[asyncpg.Connection, int]]:
    """A read-only session, in one repeatable-read snapshot, and the log's horizon before it."""
    conn = await asyncpg.connect(url, server_settings={"default_transaction_read_only": "on"})
    try:
        last = await horizon.settled(conn)  # `horizon.Behind` if it does not cover the log
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await bodies.ready(conn)
            yield conn, last
    finally:
        await conn.close()


async def _head(conn: asyncpg.Connection, last: int) -> tuple[int, str]:
    digest, events = hashlib.sha256(), 0
    pruned = prune.RECORDED_SHA256 if await conn.fetchval(PRUNABLE) else "NULL::bytea"
    async for row in conn.cursor(PREFIX.format(pruned=pruned), last, prefetch=10_000):
        if not bodies.knows(row["codec"]):
            await bodies.ready(conn, (row["codec"],))
        if row["codec"] == bodies.PRUNED:
            recorded = row["pruned_sha256"]
            body_sha256 = "no record of the pruned body" if recorded is None else recorded.hex()
        else:
            body_sha256 = hashlib.sha256(bodies.unpack(row["codec"], row["raw"])).hexdigest()
        digest.update(_line(row, body_sha256))
        events += 1
    return events, digest.hexdigest()


def _line(row: asyncpg.Record, body_sha256: str) -> bytes:
    """One event as the head covers it: every stored field, the body by its hash."""
    occurred = row["occurred_at"]
    return (
        orjson.dumps(
            [
                row["position"],
                row["stream_type"],
                row["stream_id"],
                row["event_type"],
                row["received_at"].isoformat(),
                None if occurred is None else occurred.isoformat(),
                row["readmitted_from"],
                body_sha256,
            ]
        )
        + b"\n"
    )
