"""Deliveries we refused, kept with their bytes and our reason, for inspection."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.store.database import Database
from tracker.store.events import fitting

# Rejections are paged by id like the log. They are few, so one lock taken from drawing an id to
# COMMIT makes ids visible in order (the log, at its rate, pages up to a horizon instead:
# horizon.py).
REJECT_LOCK = 0x7472_6B72_656A  # "trkrej"

RECORD = """
WITH locked AS (SELECT pg_advisory_xact_lock($7))
INSERT INTO rejected (received_at, status, code, reason, details, raw, truncated, size, sha256)
SELECT $1, $2, $3, $4, $5::jsonb, $6, $8, $9, $10 FROM locked
RETURNING id
"""
PRUNE = """
WITH gone AS (DELETE FROM rejected WHERE received_at < $1 RETURNING id, octet_length(raw) AS kept)
SELECT count(*) AS rows, min(id) AS first, max(id) AS last, coalesce(sum(kept), 0) AS bytes
FROM gone
"""

READ_AFTER = """
SELECT id, received_at, status, code, reason, details, raw, truncated, size, sha256,
       (SELECT position FROM events e WHERE e.readmitted_from = r.id) AS readmitted_position
FROM rejected r WHERE id > $1 ORDER BY id LIMIT $2
"""
SIZES_AFTER = "SELECT octet_length(raw) FROM rejected WHERE id > $1 ORDER BY id LIMIT $2"
# Newest first (the dashboard, someone debugging an integration now): the same, backwards.
READ_BEFORE = READ_AFTER.replace("id > $1 ORDER BY id", "id < $1 ORDER BY id DESC")
SIZES_BEFORE = SIZES_AFTER.replace("id > $1 ORDER BY id", "id < $1 ORDER BY id DESC")
PAGE_BYTES = 4 * 1024 * 1024  # refused bodies per page (each is sent twice: text and base64)


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    code: str
    reason: str
    details: list[dict[str, Any]]
    raw: bytes  # what was read of the body: all of it, unless `truncated`
    truncated: bool = False  # the body was not read in full (413): its size and hash are unknown


@dataclass(frozen=True, slots=True)
class Pruned:
    rows: int
    first: int | None
    last: int | None
    bytes: int


@dataclass(frozen=True, slots=True)
class RejectedDelivery:
    id: int
    received_at: datetime
    status: int
    code: str
    reason: str
    details: list[dict[str, Any]]
    raw: bytes
    truncated: bool
    size: int | None  # of the whole body, when it was read in full
    sha256: bytes | None
    readmitted_position: int | None  # `tracker readmit` appended it there


async def keep(db: Database, rejection: Rejection, received_at: datetime, prefix: int) -> int:
    """Keep a refusal: its first `prefix` bytes, and its whole size and SHA-256 when it was read
    in full, so a flood of refused megabytes costs kilobytes and each stays recognisable."""
    raw = rejection.raw
    whole = not rejection.truncated
    async with db.transaction("record rejection") as conn:
        rejected_id: int = await conn.fetchval(
            RECORD,
            received_at,
            rejection.status,
            rejection.code,
            rejection.reason,
            json.dumps(rejection.details),
            raw[:prefix],
            REJECT_LOCK,
            rejection.truncated or len(raw) > prefix,
            len(raw) if whole else None,
            hashlib.sha256(raw).digest() if whole else None,
        )
    return rejected_id


async def prune(db: Database, before: datetime) -> Pruned:
    """Delete the refusals received before `before` (the one way rows leave `rejected`)."""
    async with db.transaction("prune rejected") as conn:
        await conn.execute("SET LOCAL tracker.pruning = 'on'")
        row = await conn.fetchrow(PRUNE, before)
    assert row is not None  # noqa: S101 - an aggregate returns one row
    return Pruned(row["rows"], row["first"], row["last"], row["bytes"])


async def read_page(
    db: Database, after: int, limit: int, budget: int | None = None, *, newest_first: bool = False
) -> tuple[list[RejectedDelivery], bool]:
    """As `events.read_page`: up to `limit`, within `budget` bytes of bodies; more to come?
    `newest_first`: ids below `after`, descending."""
    sized, read = (SIZES_BEFORE, READ_BEFORE) if newest_first else (SIZES_AFTER, READ_AFTER)
    sizes = [row[0] for row in await db.fetch("read rejected sizes", sized, after, limit)]
    count = fitting(sizes, PAGE_BYTES if budget is None else budget)
    if count == 0:
        return [], False
    rows = await db.fetch("read rejected", read, after, count)
    page = [
        RejectedDelivery(
            **{**dict(row), "raw": bytes(row["raw"]), "details": json.loads(row["details"])}
        )
        for row in rows
    ]
    return page, len(sizes) == limit or count < len(sizes)
