"""Readmission: refused deliveries that today's models accept, appended as they first arrived.

The platforms never retry a 4xx, so a delivery refused for a detail a later version tolerates
(issue 11: a result without `description`, say) is an upgrade result no rollup ever saw. Its
bytes are in `rejected`; `readmit` decodes them again with the same `decode` the server uses and
appends those that pass, in the order they were refused, each with its original `received_at`
and `readmitted_from` = its `rejected` id. The reducers need nothing more: what a track shows
never depends on the order deliveries arrive in (domain/precedence.py), so a readmitted one is
judged like any other, by what it says, at its original time. A unique index on
`events.readmitted_from` makes a delivery readmittable once, whoever runs it at the same time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime

from tracker.domain.delivery import NewEvent, Refusal, decode
from tracker.store import feed, ingestion
from tracker.store.database import Database

BATCH = 500
# Readmissions are serialised, so that two at once cannot both pick the same rows.
READMIT_LOCK = 0x7472_6B72_6164  # "trkrad"
TAKE_LOCK = "SELECT pg_advisory_xact_lock($1)"
# Refused deliveries not readmitted yet, in the order they were refused (ids are serialised).
PENDING = """
SELECT r.id, r.received_at, r.raw, r.truncated FROM rejected r
WHERE r.id > $1 AND r.received_at >= $2
  AND NOT EXISTS (SELECT FROM events e WHERE e.readmitted_from = r.id)
ORDER BY r.id LIMIT $3
"""
BEGINNING = datetime.fromisoformat("0001-01-01T00:00:00+00:00")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One refused delivery judged again: `event` if it passes now, else `reason`."""

    rejected_id: int
    received_at: datetime
    event: NewEvent | None
    reason: str | None
    position: int | None = None  # where it was appended (not in a dry run)


def judge(rejected_id: int, received_at: datetime, raw: bytes, truncated: bool) -> Verdict:
    """Pure: what today's models say about a refused delivery's bytes."""
    if truncated:
        reason = "body_too_large: only its first bytes were kept"
        return Verdict(rejected_id, received_at, None, reason)
    try:
        event = decode(raw)
    except Refusal as refusal:
        return Verdict(rejected_id, received_at, None, f"{refusal.code}: {refusal.message}")
    return Verdict(rejected_id, received_at, replace(event, readmitted_from=rejected_id), None)


async def readmit(db: Database, since: datetime | None, *, dry_run: bool) -> AsyncIterator[Verdict]:
    """Every refused delivery received at or after `since` and not readmitted yet, judged; those
    that pass are appended (and projected) batch by batch, unless `dry_run`."""
    after = 0
    while True:
        async with db.transaction("readmit") as conn:
            await conn.execute(TAKE_LOCK, READMIT_LOCK)
            rows = await conn.fetch(PENDING, after, since or BEGINNING, BATCH)
            verdicts = [
                judge(row["id"], row["received_at"], bytes(row["raw"]), row["truncated"])
                for row in rows
            ]
            passing = [v for v in verdicts if v.event is not None]
            if passing and not dry_run:
                positions = await ingestion.ingest(
                    conn, [v.event for v in passing if v.event], [v.received_at for v in passing]
                )
                appended = dict(zip((v.rejected_id for v in passing), positions, strict=True))
                verdicts = [replace(v, position=appended.get(v.rejected_id)) for v in verdicts]
        if passing and not dry_run:
            await feed.announce(db)  # committed: wake the live feeds
        for verdict in verdicts:
            yield verdict
        if len(rows) < BATCH:
            return
        after = rows[-1]["id"]
