"""Recording alert changes, in the caller's transaction: as events of the log (`alert.changed`,
`alert.stopped`, folded into `alerts` and `alert_transitions` like any event), as webhooks in the
outbox, and as the StopBatchTask calls owed (`guard_stops`). A change is so recorded, sent and
acted on if and only if its transaction commits. Who may call: a transaction holding the
rollout's `operations` row (store/alerting.py says why), except for a stop's outcome, which
changes no number.

Nothing here notifies: a NOTIFY inside the transaction would serialise its commit with every
other notifying one. The deliverer and the stopper are woken after commit (`announce`, or the
live feed's wake-up after an append), and poll besides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tracker.domain.delivery import NewEvent
from tracker.domain.guards import Alert, Guard, ended
from tracker.domain.notifications import AlertChanged, AlertStopped, EndReason
from tracker.domain.recorded import Recorded
from tracker.domain.registry import BY_NAME
from tracker.store import events, outbox, projections
from tracker.store.database import Connection, Database
from tracker.store.rows import ALERTS

OWE_STOP = """
INSERT INTO guard_stops (id, guard, operation_id, track, number, created_at, next_at, state)
VALUES ($1, $2, $3, $4, $5, now(), now(), 'pending')
ON CONFLICT (id) DO NOTHING
"""
STOPS_CHANNEL = "tracker_guard_stops"
NOTIFY_STOPS = f"SELECT pg_notify('{STOPS_CHANNEL}', '')"
FIRING_OF = "SELECT * FROM alerts WHERE guard = $1 AND state = 'firing'"
# Pending webhooks of a guard that is gone: nothing may sign them any more.
DROP_PENDING = """
UPDATE webhook_outbox SET state = 'dead', last_error = 'the guard was deleted', next_at = now()
WHERE secret_ref = $1 AND state = 'pending'
"""
CHANGED, STOPPED = BY_NAME["alert.changed"], BY_NAME["alert.stopped"]


async def record(conn: Connection, decided: Sequence[tuple[Guard, AlertChanged]]) -> None:
    """The changes: appended and folded, and each sent to its guard's webhook; a firing whose
    guard asks it owes a StopBatchTask (IoTDA tasks only)."""
    new = [_event(change) for _, change in decided]
    await _append(conn, new)
    for (guard, change), event in zip(decided, new, strict=True):
        if guard.webhook_url is not None:
            row = outbox.Outgoing(
                change.id, event.stream_id, guard.webhook_url, guard.name, event.raw
            )
            await outbox.enqueue(conn, row)
        if guard.stop_task and change.state == "firing" and change.platform == "iotda":
            await conn.execute(
                OWE_STOP, change.id, change.guard, change.operation_id, change.track, change.number
            )


async def end(conn: Connection, guard: Guard | str, reason: EndReason, at: datetime) -> list[Alert]:
    """Resolve every firing alert of a guard being replaced (its new definition's webhook is
    told) or deleted (nobody is: its pending webhooks die with it). The rollouts' rows are
    locked first, in key order as the appends lock them, so no decision on them interleaves.
    The alerts that were firing."""
    name = guard if isinstance(guard, str) else guard.name
    firing = [ALERTS.from_row(row) for row in await conn.fetch(FIRING_OF, name)]
    if firing:
        await lock_rollouts(conn, [(a.operation_id, a.track) for a in firing])
        firing = [ALERTS.from_row(row) for row in await conn.fetch(FIRING_OF, name)]
    changes = [ended(alert, reason, at) for alert in firing]
    if isinstance(guard, str):
        await _append(conn, [_event(change) for change in changes])
        await conn.execute(DROP_PENDING, name)
    else:
        await record(conn, [(guard, change) for change in changes])
    return firing


LOCK_ROLLOUTS = """
SELECT 1 FROM operations
WHERE (operation_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[]))
ORDER BY operation_id, track
FOR UPDATE
"""


async def lock_rollouts(conn: Connection, keys: Sequence[tuple[str, str]]) -> None:
    ordered = sorted(set(keys))
    await conn.execute(LOCK_ROLLOUTS, [k[0] for k in ordered], [k[1] for k in ordered])


async def record_stop(conn: Connection, outcome: AlertStopped) -> None:
    """What a StopBatchTask came to, in the log and the alert."""
    raw = outcome.model_dump_json().encode()
    stream = STOPPED.stream_id(outcome)
    await _append(conn, [NewEvent("alert", stream, STOPPED.name, raw, None, outcome)])


async def announce(db: Database) -> None:
    """After a commit that recorded changes outside an append: wake the deliverers and the
    stoppers of every process now, rather than at their next poll."""
    await outbox.announce(db)
    await db.fetchrow("wake the stoppers", NOTIFY_STOPS)


def _event(change: AlertChanged) -> NewEvent:
    raw = change.model_dump_json(exclude_none=True).encode()
    return NewEvent("alert", CHANGED.stream_id(change), CHANGED.name, raw, None, change)


async def _append(conn: Connection, new: list[NewEvent]) -> None:
    if not new:
        return
    appended = await events.append(conn, new)
    await projections.apply(
        conn,
        [
            Recorded(at.position, at.received_at, event.notification)
            for at, event in zip(appended, new, strict=True)
            if event.notification is not None
        ],
    )
