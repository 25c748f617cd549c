"""Deliveries we refused, kept with their bytes and our reason, for inspection."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.store.database import Database
from tracker.store.events import fitting

# Rejections are paged by id like the log, so they are serialised the same way (see events.py).
REJECT_LOCK = 0x7472_6B72_656A  # "trkrej"

RECORD = """
WITH locked AS (SELECT pg_advisory_xact_lock($7))
INSERT INTO rejected (received_at, status, code, reason, details, raw, truncated)
SELECT $1, $2, $3, $4, $5::jsonb, $6, $8 FROM locked
RETURNING id
"""

READ_AFTER = """
SELECT id, received_at, status, code, reason, details, raw, truncated,
       (SELECT position FROM events e WHERE e.readmitted_from = r.id) AS readmitted_position
FROM rejected r WHERE id > $1 ORDER BY id LIMIT $2
"""
SIZES_AFTER = "SELECT octet_length(raw) FROM rejected WHERE id > $1 ORDER BY id LIMIT $2"
PAGE_BYTES = 4 * 1024 * 1024  # refused bodies per page (each is sent twice: text and base64)


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    code: str
    reason: str
    details: list[dict[str, Any]]
    raw: bytes
    truncated: bool = False


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
    readmitted_position: int | None  # `tracker readmit` appended it there


async def record(db: Database, rejection: Rejection, received_at: datetime) -> int:
    async with db.transaction("record rejection") as conn:
        rejected_id: int = await conn.fetchval(
            RECORD,
            received_at,
            rejection.status,
            rejection.code,
            rejection.reason,
            json.dumps(rejection.details),
            rejection.raw,
            REJECT_LOCK,
            rejection.truncated,
        )
    return rejected_id


async def read_after(db: Database, after: int, limit: int) -> list[RejectedDelivery]:
    return (await read_page(db, after, limit))[0]


async def read_page(
    db: Database, after: int, limit: int, budget: int | None = None
) -> tuple[list[RejectedDelivery], bool]:
    """As `events.read_page`: up to `limit`, within `budget` bytes of bodies; more to come?"""
    sizes = [row[0] for row in await db.fetch("read rejected sizes", SIZES_AFTER, after, limit)]
    count = fitting(sizes, PAGE_BYTES if budget is None else budget)
    if count == 0:
        return [], False
    rows = await db.fetch("read rejected", READ_AFTER, after, count)
    page = [
        RejectedDelivery(
            **{**dict(row), "raw": bytes(row["raw"]), "details": json.loads(row["details"])}
        )
        for row in rows
    ]
    return page, len(sizes) == limit or count < len(sizes)
