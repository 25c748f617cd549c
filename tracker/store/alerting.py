"""The guards at work in the store: read the rollouts that moved, decide their alerts' changes
(domain/guards.py), and have them recorded (alert_log.py).

Who may decide: a transaction that holds the rollout's `operations` row. The append holds the
rows of the rollups it moved until it commits (projections.write); the guards' clock and the
admin API lock the rows they decide on (busy.py, alert_log.lock_rollouts). So two decisions on
one rollout never interleave, and an alert's changes are numbered without gaps. The row locks
come before the alert streams' locks (events.append), in every transaction that takes both.

What an append decides, and what it leaves to the clock: a delivery can only lower the number
of stuck devices and end a silence, never raise or start them (time does), so in the append a
`stuck_above` or `silent_for` guard is read only while its alert fires, with the stuck devices
counted no further than the threshold's next one. The clock reads them in full (busy.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence

from tracker import metrics
from tracker.domain.guards import (
    Alert,
    AlertKey,
    Facts,
    Guard,
    NewErrorCode,
    Rollout,
    SilentFor,
    StuckAbove,
    decide,
)
from tracker.domain.notifications import AlertChanged, Platform, Track
from tracker.store import alert_log, guards
from tracker.store.database import Connection
from tracker.store.errors import TRANSIENT
from tracker.store.queries import STUCK_WHERE
from tracker.store.rollups import BUSY_WHERE
from tracker.store.rows import ALERTS

log = logging.getLogger(__name__)

RolloutKey = tuple[str, Track]  # (operation_id, track)
Pair = tuple[Guard, Rollout, Facts]

# What a condition reads of each rollout: the append's counters, the codes of its failures
# (only when a new_error_code guard asks), and whether it is an IoTDA task. The clock, not the
# transaction's start: silence is measured to the moment of reading.
FACTS = """
SELECT o.operation_id, o.track, o.app_id, o.success, o.fail,
       o.downloading + o.downloaded + o.updating + o.waitting + o.processing
           + o.fail_wait_retry AS busy,
       o.last_activity_at,
       EXISTS (SELECT FROM tasks t WHERE t.task_id = o.operation_id) AS iotda,
       CASE WHEN $3 THEN ARRAY(SELECT DISTINCT e.error_code FROM operation_errors e
                               WHERE e.operation_id = o.operation_id AND e.track = o.track
                                 AND e.devices > 0 AND e.error_code <> '')
       END AS codes,
       clock_timestamp() AS at
FROM operations o
WHERE (o.operation_id, o.track) IN (SELECT * FROM unnest($1::text[], $2::text[]))
"""
ALERTS_OF = """
SELECT * FROM alerts
WHERE (guard, operation_id, track) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
"""
# Members stuck for longer than $4 seconds, of each rollout, counted up to $5 at most (null:
# all): over the rollout's own range of the index that holds only busy ones, never the fleet.
STUCK = f"""
SELECT CASE WHEN k.iotda THEN
           (SELECT count(*) FROM (SELECT FROM operation_devices
            WHERE operation_id = k.operation_id AND track = k.track AND {BUSY_WHERE}
              AND state_since < now() - make_interval(secs => $4) LIMIT $5) AS s)
       ELSE
           (SELECT count(*) FROM (SELECT FROM device_tracks
            WHERE track = k.track AND operation_id = k.operation_id AND {STUCK_WHERE}
              AND state_since < now() - make_interval(secs => $4) LIMIT $5) AS s)
       END AS stuck
FROM unnest($1::text[], $2::text[], $3::boolean[]) WITH ORDINALITY AS k(operation_id, track, iotda, n)
ORDER BY k.n
"""  # noqa: S608, E501 - constants only
TIMED = (StuckAbove, SilentFor)  # what time makes true, and a delivery can only end


async def watch_apart(conn: Connection, rollouts: Collection[RolloutKey]) -> None:
    """Decide the alerts of the rollouts an append moved (whose rows it holds) under every
    guard, in a savepoint: deliveries come before alerts. If deciding fails for any reason but
    the connection's, the deliveries still commit, the failure is logged and counted, and the
    next decision on the rollout (a delivery, or the clock while it is busy) catches up."""
    if not rollouts:
        return
    watching = await guards.all_guards(conn)
    if not watching:
        return
    try:
        async with conn.transaction():
            await evaluate(conn, rollouts, watching, timed=False)
    except TRANSIENT:
        raise
    except Exception:
        log.exception("guards: the alerts of %d rollouts were not decided", len(rollouts))
        metrics.GUARD_ERRORS.inc()


async def evaluate(
    conn: Connection,
    rollouts: Collection[RolloutKey],
    watching: Sequence[Guard],
    *,
    timed: bool,
    record: bool = True,
) -> list[AlertChanged]:
    """The changes of the rollouts' alerts under `watching`, recorded unless `record` is false
    (the clock's first, unlocked look). `timed`: read stuck and silence in full (the clock,
    the admin API), else only to end an alert that fires (an append)."""
    pairs = await _pairs(conn, sorted(rollouts), watching)
    held = await _alerts(conn, [(g.name, r.operation_id, r.track) for g, r, _ in pairs])
    if not timed:
        pairs = [p for p in pairs if not isinstance(p[0].when, TIMED) or _firing(held, p)]
    pairs = await _with_stuck(conn, pairs, capped=not timed)
    decided = [
        (guard, change)
        for guard, rollout, facts in pairs
        if (
            change := decide(held.get(_key(guard, rollout)), guard.name, rollout, guard.when, facts)
        )
        is not None
    ]
    if decided and record:
        await alert_log.record(conn, decided)
    return [change for _, change in decided]


async def _pairs(conn: Connection, keys: list[RolloutKey], watching: Sequence[Guard]) -> list[Pair]:
    """Each rollout with the guards whose scope covers it, and what they read of it."""
    if not keys:
        return []
    codes = any(isinstance(g.when, NewErrorCode) for g in watching)
    rows = await conn.fetch(FACTS, [k[0] for k in keys], [k[1] for k in keys], codes)
    pairs: list[Pair] = []
    for row in rows:
        platform: Platform = "iotda" if row["iotda"] else "oceanconnect"
        rollout = Rollout(row["operation_id"], row["track"], row["app_id"], platform)
        facts = Facts(
            row["success"],
            row["fail"],
            row["busy"],
            frozenset(row["codes"] or ()),
            row["last_activity_at"],
            row["at"],
        )
        pairs += [(g, rollout, facts) for g in watching if g.scope.covers(rollout)]
    return pairs


def _key(guard: Guard, rollout: Rollout) -> AlertKey:
    return (guard.name, rollout.operation_id, rollout.track)


def _firing(held: dict[AlertKey, Alert], pair: Pair) -> bool:
    alert = held.get(_key(pair[0], pair[1]))
    return alert is not None and alert.state == "firing"


async def _with_stuck(conn: Connection, pairs: list[Pair], *, capped: bool) -> list[Pair]:
    """The stuck count each `stuck_above` guard asks of its rollouts: one count per threshold
    age over each rollout's own stuck range; `capped`, up to one past the guard's threshold
    (all an append needs to know: whether it is still above)."""
    wanted: dict[tuple[int, int | None], set[Rollout]] = defaultdict(set)
    for guard, rollout, _ in pairs:
        if isinstance(guard.when, StuckAbove):
            cap = guard.when.stuck_above + 1 if capped else None
            wanted[guard.when.stuck_for, cap].add(rollout)
    counted: dict[tuple[int, int | None, Rollout], int] = {}
    for (age, cap), of in wanted.items():
        ordered = sorted(of)
        found = await conn.fetch(
            STUCK,
            [r.operation_id for r in ordered],
            [r.track for r in ordered],
            [r.platform == "iotda" for r in ordered],
            float(age),
            cap,
        )
        counted.update({(age, cap, r): row["stuck"] for r, row in zip(ordered, found, strict=True)})

    def stuck(guard: Guard, rollout: Rollout, facts: Facts) -> Facts:
        if not isinstance(guard.when, StuckAbove):
            return facts
        cap = guard.when.stuck_above + 1 if capped else None
        return facts._replace(stuck=counted[guard.when.stuck_for, cap, rollout])

    return [(g, r, stuck(g, r, f)) for g, r, f in pairs]


async def _alerts(conn: Connection, keys: list[AlertKey]) -> dict[AlertKey, Alert]:
    if not keys:
        return {}
    rows = await conn.fetch(
        ALERTS_OF, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]
    )
    found = [ALERTS.from_row(row) for row in rows]
    return {(a.guard, a.operation_id, a.track): a for a in found}
