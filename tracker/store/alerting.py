"""The guards at work in the store: read each rollout that moved, decide its alerts' changes
(domain/guards.py), and record them in the caller's transaction: as events in the log
(`alert.changed`, folded into `alerts` like any event), as webhooks in the outbox, and as the
StopBatchTask calls owed (`guard_stops`). So a change is recorded, sent and acted on if and only
if its transaction commits, exactly once however often the rollout is read again.

Who may decide: a transaction that holds the rollout's `operations` row. The append holds the
rows of the rollups it moved until it commits (projections.write); the guards' clock
(tracker/alerts/clock.py) locks the rows it reads, skipping those an append holds (that append
decides them). So two decisions on one rollout never interleave, and an alert's changes are
numbered without gaps. The row locks come before the alert streams' locks (events.append), in
every transaction that takes both: no cycle.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from tracker import metrics
from tracker.domain.delivery import NewEvent
from tracker.domain.guards import (
    Alert,
    AlertKey,
    Facts,
    Guard,
    Rollout,
    StuckAbove,
    decide,
)
from tracker.domain.notifications import AlertChanged, AlertStopped, Track
from tracker.domain.recorded import Recorded
from tracker.domain.registry import BY_NAME
from tracker.store import events, guards, outbox, projections
from tracker.store.database import Connection
from tracker.store.errors import TRANSIENT
from tracker.store.rollups import STUCK
from tracker.store.rows import ALERTS

log = logging.getLogger(__name__)

RolloutKey = tuple[str, Track]  # (operation_id, track)

# What a condition reads of each rollout: the append's counters, the codes of its failures,
# and whether it is an IoTDA task. The clock, not the transaction's start: silence is measured
# to the moment of reading.
FACTS = """
SELECT o.operation_id, o.track, o.app_id, o.success, o.fail,
       o.downloading + o.downloaded + o.updating + o.waitting + o.processing
           + o.fail_wait_retry AS busy,
       o.last_activity_at,
       EXISTS (SELECT FROM tasks t WHERE t.task_id = o.operation_id) AS iotda,
       ARRAY(SELECT DISTINCT e.error_code FROM operation_errors e
             WHERE e.operation_id = o.operation_id AND e.track = o.track AND e.devices > 0
               AND e.error_code <> '') AS codes,
       clock_timestamp() AS at
FROM operations o
WHERE (o.operation_id, o.track) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
ALERTS_OF = """
SELECT * FROM alerts
WHERE (guard, operation_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
"""
OWE_STOP = """
INSERT INTO guard_stops (id, guard, operation_id, track, number, created_at, next_at, state)
VALUES ($1, $2, $3, $4, $5, now(), now(), 'pending')
ON CONFLICT (id) DO NOTHING
"""
STOPS_CHANNEL = "tracker_guard_stops"
NOTIFY_STOPS = f"SELECT pg_notify('{STOPS_CHANNEL}', '')"
CHANGED, STOPPED = BY_NAME["alert.changed"], BY_NAME["alert.stopped"]
assert ALERTS.name == "alerts"  # noqa: S101 - ALERTS_OF reads it by name


async def watch(conn: Connection, rollouts: Collection[RolloutKey]) -> list[AlertChanged]:
    """Decide and record the alerts of `rollouts` (whose rows the caller holds) under every
    guard; the changes recorded."""
    if not rollouts:
        return []
    watching = await guards.all_guards(conn)
    if not watching:
        return []
    return await evaluate(conn, rollouts, watching)


async def watch_apart(conn: Connection, rollouts: Collection[RolloutKey]) -> None:
    """`watch`, in a savepoint of the append's transaction: deliveries come before alerts. If
    deciding fails for any reason but the database's (a bug), the deliveries still commit, the
    failure is logged and counted, and the clock decides those rollouts again while they are
    busy; a database failure fails the append as it would have anyway."""
    try:
        async with conn.transaction():
            await watch(conn, rollouts)
    except TRANSIENT:
        raise
    except Exception:
        log.exception("guards: the alerts of %d rollouts were not decided", len(rollouts))
        metrics.GUARD_ERRORS.inc()


async def evaluate(
    conn: Connection, rollouts: Collection[RolloutKey], watching: Sequence[Guard]
) -> list[AlertChanged]:
    keys = sorted(rollouts)
    rows = await conn.fetch(FACTS, [k[0] for k in keys], [k[1] for k in keys])
    pairs: list[tuple[Guard, Rollout, Facts]] = []
    for row in rows:
        rollout = Rollout(
            row["operation_id"],
            row["track"],
            row["app_id"],
            "iotda" if row["iotda"] else "oceanconnect",
        )
        facts = Facts(
            row["success"],
            row["fail"],
            row["busy"],
            frozenset(row["codes"]),
            row["last_activity_at"],
            row["at"],
        )
        pairs += [(g, rollout, facts) for g in watching if g.scope.covers(rollout)]
    if not pairs:
        return []
    pairs = await _with_stuck(conn, pairs)
    held = await _alerts(conn, [(g.name, r.operation_id, r.track) for g, r, _ in pairs])
    decided = [
        (guard, change)
        for guard, rollout, facts in pairs
        if (
            change := decide(
                held.get((guard.name, *rollout[:2])), guard.name, rollout, guard.when, facts
            )
        )
        is not None
    ]
    if decided:
        await record(conn, decided)
    return [change for _, change in decided]


async def _with_stuck(
    conn: Connection, pairs: list[tuple[Guard, Rollout, Facts]]
) -> list[tuple[Guard, Rollout, Facts]]:
    """The stuck count each `stuck_above` guard asks of its rollouts: one count per rollout and
    threshold age, over the rollout's own stuck range (never the fleet)."""
    wanted: dict[int, set[Rollout]] = defaultdict(set)
    for guard, rollout, _ in pairs:
        if isinstance(guard.when, StuckAbove):
            wanted[guard.when.stuck_for].add(rollout)
    counted: dict[tuple[int, Rollout], int] = {}
    for age, of in wanted.items():
        ordered = sorted(of)
        found = await conn.fetch(
            STUCK,
            [r.operation_id for r in ordered],
            [r.track for r in ordered],
            [r.platform == "iotda" for r in ordered],
            float(age),
        )
        counted.update({(age, r): row["stuck"] for r, row in zip(ordered, found, strict=True)})
    return [
        (g, r, f._replace(stuck=counted[g.when.stuck_for, r]))
        if isinstance(g.when, StuckAbove)
        else (g, r, f)
        for g, r, f in pairs
    ]


async def _alerts(conn: Connection, keys: list[AlertKey]) -> dict[AlertKey, Alert]:
    rows = await conn.fetch(
        ALERTS_OF, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    found = [ALERTS.from_row(row) for row in rows]
    return {(a.guard, a.operation_id, a.track): a for a in found}


async def record(conn: Connection, decided: Sequence[tuple[Guard, AlertChanged]]) -> None:
    """The changes, in the caller's transaction: appended and folded, sent, acted on."""
    new = [
        NewEvent(
            "alert",
            CHANGED.stream_id(change),
            CHANGED.name,
            change.model_dump_json().encode(),
            None,
            change,
        )
        for _, change in decided
    ]
    await _append(conn, new)
    stops = 0
    for (guard, change), event in zip(decided, new, strict=True):
        if guard.webhook_url is not None:
            await outbox.enqueue(
                conn,
                outbox.Outgoing(
                    change.id, event.stream_id, guard.webhook_url, guard.name, event.raw
                ),
            )
        if guard.stop_task and change.state == "firing" and change.platform == "iotda":
            await conn.execute(
                OWE_STOP, change.id, change.guard, change.operation_id, change.track, change.number
            )
            stops += 1
    if stops:
        await conn.execute(NOTIFY_STOPS)


async def record_stop(conn: Connection, outcome: AlertStopped) -> None:
    """What a StopBatchTask came to, in the log and the alert."""
    raw = outcome.model_dump_json().encode()
    await _append(
        conn, [NewEvent("alert", STOPPED.stream_id(outcome), STOPPED.name, raw, None, outcome)]
    )


async def _append(conn: Connection, new: list[NewEvent]) -> None:
    appended = await events.append(conn, new)
    await projections.apply(
        conn,
        [
            Recorded(at.position, at.received_at, event.notification)
            for at, event in zip(appended, new, strict=True)
            if event.notification is not None
        ],
    )


# Rollouts with devices still busy, a page at a time by the `operations_busy` index; locked, and
# skipping any row an append holds (that append reads its rollout's guards itself).
BUSY_PAGE = """
SELECT operation_id, track, last_activity_at FROM operations
WHERE downloading + downloaded + updating + waitting + processing + fail_wait_retry > 0
  AND (last_activity_at, operation_id COLLATE "C", track) > ($1, $2 COLLATE "C", $3)
ORDER BY last_activity_at, operation_id COLLATE "C", track
LIMIT $4
FOR UPDATE SKIP LOCKED
"""
Cursor = tuple[datetime, str, str]
START: Cursor = (datetime.min.replace(tzinfo=UTC), "", "")


async def read_busy(conn: Connection, after: Cursor, limit: int) -> tuple[int, Cursor | None]:
    """Decide the alerts of a page of busy rollouts under every guard, in the caller's
    transaction: how many changed, and where the next page starts (None: that was the last)."""
    watching = await guards.all_guards(conn)
    if not watching:
        return 0, None
    rows = await conn.fetch(BUSY_PAGE, *after, limit)
    changes = await evaluate(conn, [(r["operation_id"], r["track"]) for r in rows], watching)
    last = rows[-1] if len(rows) == limit else None
    return len(changes), (
        None if last is None else (last["last_activity_at"], last["operation_id"], last["track"])
    )
