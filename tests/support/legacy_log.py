"""A log as versions 004 to 010 wrote it, for tests that upgrade one: since the numbered
migrations define no function (tracker/store/migrations.py), a database migrated only that far
has no append of its own, so the test writes what that version's append wrote."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracker.domain.delivery import NewEvent
from tracker.store import chain
from tracker.store.database import Connection

HEAD = """
SELECT hash FROM events WHERE stream_type = $1 AND stream_id = $2
ORDER BY position DESC LIMIT 1
"""
# The columns 006 to 010 had: the body as received (codec 0), no `chain` (011 adds it).
INSERT = """
INSERT INTO events (stream_type, stream_id, event_type, raw, codec, received_at, occurred_at, hash)
VALUES ($1, $2, $3, $4, 0, $5, $6, $7)
"""


async def append_body_only(
    conn: Connection, events: Sequence[NewEvent], received_at: datetime
) -> None:
    """Append `events` in order, each chained to its stream's head by a link of version 1."""
    for event in events:
        head = await conn.fetchval(HEAD, event.stream_type, event.stream_id)
        await conn.execute(
            INSERT,
            event.stream_type,
            event.stream_id,
            event.event_type,
            event.raw,
            received_at,
            event.occurred_at,
            chain.body_only(head, event.raw),
        )
