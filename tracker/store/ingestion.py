"""Ingestion in the store: append deliveries to the log and project them, in one transaction
(200 = both done)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracker.domain.delivery import NewEvent
from tracker.domain.notifications import Notification
from tracker.domain.recorded import Recorded
from tracker.store import alerting, events, projections
from tracker.store.database import Connection


async def ingest(
    conn: Connection,
    new: Sequence[NewEvent],
    received_at: datetime | Sequence[datetime] | None = None,
    *,
    restoring: bool = False,
    decide: bool | None = None,
) -> list[int]:
    """Append `new` (received now, or at `received_at`: see `events.append`), apply the
    recognised ones to the projections, and return their positions.

    `events.append` holds its streams' locks until commit, so the projections see every
    stream's events in position order, across all processes (DESIGN.md invariant 3). The
    guards then read the rollouts that moved (alerting.py), unless `decide` says not to (by
    default: unless this restores another log's export, whose alerts' changes are events of
    it; `tracker import` decides for its bare notifications). Once the
    transaction has committed, the caller wakes the followers (`feed.announce`) if
    `projected(new)`.
    """
    appended = await events.append(conn, new, received_at, restoring=restoring)
    recorded: list[Recorded[Notification]] = [
        Recorded(at.position, at.received_at, event.notification)
        for at, event in zip(appended, new, strict=True)
        if event.notification is not None
    ]
    moved = await projections.apply(conn, recorded)
    if not restoring if decide is None else decide:
        await alerting.watch_apart(conn, moved)
    return [at.position for at in appended]


def projected(new: Sequence[NewEvent]) -> bool:
    """Whether recording `new` changes what the live feed shows."""
    return any(event.notification is not None for event in new)
