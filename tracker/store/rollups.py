"""Reading upgrade operations: their rollups (counters, O(1) to read), the list of them by
latest activity, and their members."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from tracker.domain.activity import MinuteActivity
from tracker.domain.device import DeviceTransition
from tracker.domain.notifications import RESULTS, TRACKS, UPGRADE_STATES, Track
from tracker.domain.operation import ErrorCount, OperationCounts, OperationDevice
from tracker.store import horizon
from tracker.store.database import Database, Record
from tracker.store.errors import NotFound
from tracker.store.listing import Index, Listing
from tracker.store.queries import STORED_RESULTS, STORED_STATES, STUCK_WHERE, Key
from tracker.store.rows import DEVICE_TRANSITIONS, OPERATION_DEVICES, OPERATIONS

TOP_ERRORS = 20

OPERATIONS_BY_ACTIVITY = Listing(
    "operations",
    ("operation_id", "track"),
    ("last_activity_at", "operation_id", "track"),
    (
        Index("operations_by_activity", (), ("track",)),
        Index("operations_by_app", ("app_id",), ("track",)),
    ),
    values={"track": TRACKS},
    ids=frozenset({"operation_id"}),
    descending=True,
)
MEMBERS = Listing(
    "operation_devices",
    ("operation_id", "track", "device_id"),
    ("device_id", "track"),
    (
        Index("operation_devices_pkey", ("operation_id",), ("track",)),
        Index("operation_devices_by_state", ("operation_id",), ("track", "state", "result")),
        Index(
            "operation_devices_by_error",
            ("operation_id", "error_code"),
            ("track", "state", "result"),
        ),
    ),
    values={"track": TRACKS, "state": STORED_STATES, "result": STORED_RESULTS},
    ids=frozenset({"device_id"}),
)

# Each rollup row with its top errors and its target versions: a few small key lookups each.
WITH_DETAILS = """
SELECT o.*,
    (SELECT coalesce(json_agg(json_build_array(e.error_code, e.result_desc, e.devices)), '[]')
     FROM (SELECT * FROM operation_errors e
           WHERE e.operation_id = o.operation_id AND e.track = o.track
           ORDER BY e.devices DESC, e.error_code, e.result_desc LIMIT {top}) AS e) AS errors,
    (SELECT coalesce(json_object_agg(v.target_version, v.devices ORDER BY v.target_version), '{{}}')
     FROM operation_versions v
     WHERE v.operation_id = o.operation_id AND v.track = o.track) AS versions
FROM ({rows}) AS o
"""
ONE = "SELECT * FROM operations WHERE operation_id = $1"
# Members stuck (as GET /v1/devices?stuck_for= lists them) of each (operation, track): a count
# over the stuck index's range for that operation, so over its busy devices, never the fleet.
STUCK = f"""
SELECT (SELECT count(*) FROM device_tracks
        WHERE track = k.track AND operation_id = k.operation_id AND {STUCK_WHERE}
          AND state_since < now() - make_interval(secs => $3)) AS stuck
FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(operation_id, track, n)
ORDER BY k.n
"""  # noqa: S608 - constants only


@dataclass(frozen=True, slots=True)
class Rollup:
    """An operation on one track: its counters, its most common errors, its target versions."""

    counts: OperationCounts
    errors: list[ErrorCount]
    target_versions: dict[str, int]
    stuck: int | None = None  # asked for with a threshold (`with_stuck`)

    # What the document reads (documents.OperationDocument), besides the fields above.
    operation_id = property(lambda self: self.counts.operation_id)
    track = property(lambda self: self.counts.track)
    app_id = property(lambda self: self.counts.app_id)
    devices = property(lambda self: self.counts.devices)
    first_seen_at = property(lambda self: self.counts.first_seen_at)
    last_activity_at = property(lambda self: self.counts.last_activity_at)

    @property
    def states(self) -> dict[str, int]:
        return {s: n for s in UPGRADE_STATES if (n := getattr(self.counts, s))}

    @property
    def results(self) -> dict[str, int]:
        return {r: getattr(self.counts, r.lower()) for r in RESULTS}


async def operation(db: Database, operation_id: str, track: Track | None = None) -> Rollup:
    """The rollup of `track`, by default the one with more devices (an operation has one)."""
    sql = WITH_DETAILS.format(top=TOP_ERRORS, rows=ONE)
    found = [_rollup(row) for row in await db.fetch("read operation", sql, operation_id)]
    if track is not None:
        found = [r for r in found if r.counts.track == track]
    if not found:
        on = f" on the {track} track" if track else ""
        raise NotFound(f"no device has reported operation {operation_id!r}{on}")
    # On a tie, the first track declared (notifications.TRACKS): software.
    return max(found, key=lambda r: (r.counts.devices, -TRACKS.index(r.counts.track)))


async def operations(
    db: Database, filters: dict[str, object], after: Key | None, limit: int
) -> tuple[list[Rollup], Key | None]:
    """Rollups, the most recently active first."""
    query = OPERATIONS_BY_ACTIVITY.query(frozenset(filters), resumed=after is not None)
    sql = WITH_DETAILS.format(top=TOP_ERRORS, rows=OPERATIONS_BY_ACTIVITY.rows(query))
    sql += ' ORDER BY o.last_activity_at DESC, o.operation_id COLLATE "C" DESC, o.track DESC'
    rows = await db.fetch("list operations", sql, *query.args(filters, after or (), limit))
    found = [_rollup(row) for row in rows]
    if len(found) < limit:
        return found, None
    last = found[-1].counts
    return found, (last.last_activity_at, last.operation_id, last.track)


async def with_stuck(db: Database, found: list[Rollup], stuck_for: float) -> list[Rollup]:
    """`found`, each with how many of its devices have been busy (not idle, no result yet) for
    longer than `stuck_for` seconds."""
    if not found:
        return found
    ids, tracks = [r.operation_id for r in found], [r.track for r in found]
    rows = await db.fetch("count stuck", STUCK, ids, tracks, stuck_for)
    return [replace(r, stuck=row["stuck"]) for r, row in zip(found, rows, strict=True)]


async def members(
    db: Database, filters: dict[str, object], after: Key | None, limit: int
) -> tuple[list[OperationDevice], Key | None]:
    """An operation's members by device (`filters` has operation_id), with their state and last
    result in it."""
    query = MEMBERS.query(frozenset(filters), resumed=after is not None)
    sql = MEMBERS.rows(query)
    rows = await db.fetch("list members", sql, *query.args(filters, after or (), limit))
    found = [OPERATION_DEVICES.from_row(row) for row in rows]
    if not found and after is None:
        await operation(db, str(filters["operation_id"]))  # NotFound, unless it was reported
    if len(found) < limit:
        return found, None
    return found, (found[-1].device_id, found[-1].track)


def _rollup(row: Record) -> Rollup:
    counts = OPERATIONS.from_row(row)
    errors: list[Any] = orjson.loads(row["errors"])
    return Rollup(
        counts,
        [
            ErrorCount(counts.operation_id, counts.track, c or None, d or None, n)
            for c, d, n in errors
        ],
        orjson.loads(row["versions"]),
    )


# An operation's activity in buckets of `step` minutes, from its first minute: one row read per
# minute of its life, whatever its size.
ACTIVITY = """
SELECT $1::text AS operation_id, $2::text AS track,
       date_bin(make_interval(mins => $3), a.minute, first.minute) AS minute,
       sum(a.reports)::bigint AS reports, sum(a.invalid)::bigint AS invalid,
       sum(a.successes)::bigint AS successes, sum(a.failures)::bigint AS failures
FROM operation_activity a,
     (SELECT min(minute) AS minute FROM operation_activity
      WHERE operation_id = $1 AND track = $2) AS first
WHERE a.operation_id = $1 AND a.track = $2
GROUP BY 3 ORDER BY 3
"""
# An operation's invalid moves, oldest first (only they are in the index).
INVALID = """
SELECT * FROM device_transitions
WHERE operation_id = $1 AND track = $2 AND NOT valid AND position > $3 AND position <= $5
ORDER BY position LIMIT $4
"""


async def activity(
    db: Database, operation_id: str, track: Track, step_minutes: int
) -> list[MinuteActivity]:
    rows = await db.fetch("read activity", ACTIVITY, operation_id, track, step_minutes)
    return [MinuteActivity(*row.values()) for row in rows]


async def invalid_moves(
    db: Database, operation_id: str, track: Track, after: int, limit: int
) -> list[DeviceTransition]:
    last = await horizon.read(db)  # a cursor over many devices: stop where none can commit
    rows = await db.fetch("read invalid moves", INVALID, operation_id, track, after, limit, last)
    return [DEVICE_TRANSITIONS.from_row(row) for row in rows]
