"""Reading devices and tasks: plain SQL, keyset-paginated (store/listing.py), domain rows out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from tracker.domain.delivery import decode
from tracker.domain.device import BUSY_STATES, DeviceTransition, TrackState
from tracker.domain.notifications import (
    RESULTS,
    TASK_STATUSES,
    TASK_TYPES,
    UPGRADE_STATES,
    Track,
)
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.domain.task import Task, TaskTransition
from tracker.store import bodies, literals
from tracker.store.database import Database
from tracker.store.errors import NotFound
from tracker.store.listing import Index, Listing, present
from tracker.store.rows import DEVICE_TRACKS, DEVICE_TRANSITIONS, TASK_TRANSITIONS, TASKS

STORED_STATES = ("", *UPGRADE_STATES)  # as a blank column holds them: '' is none reported yet
STORED_RESULTS = ("", *RESULTS)
Key = tuple[Any, ...]  # a page's last key: the cursor's content

# Devices by id, all of them or one application's: one row per device.
DEVICES_BY_ID = Listing(
    "devices",
    ("device_id",),
    ("device_id",),
    (Index("devices_by_id", ()), Index("devices_by_app", ("app_id",))),
    ids=frozenset({"device_id"}),
)
# Devices by id, filtered on one track (`track` is always given).
TRACKS_BY_ID = Listing(
    "device_tracks",
    ("device_id",),
    ("device_id",),
    (
        Index("device_tracks_by_state", ("track",), ("state", "result")),
        Index("device_tracks_by_operation", ("track", "operation_id"), ("state", "result")),
        Index("device_tracks_by_app", ("track", "app_id"), ("state", "result")),
    ),
    values={"state": STORED_STATES, "result": STORED_RESULTS},
    ids=frozenset({"device_id"}),
)
# The stuck indexes' predicate, which a query must repeat for the planner to use them (generated
# from the one declaration of the states; tests/integration/test_enum_predicates.py holds the
# indexes in sql/ to it).
STUCK_WHERE = f"{literals.one_of('state', BUSY_STATES)} AND NOT settled"
# Stuck devices, longest first: not idle since before now - stuck_for, and the result of their
# sub-operation not in (domain/device.py `is_settled`).
TRACKS_STUCK = Listing(
    "device_tracks",
    ("device_id",),
    ("state_since", "device_id"),
    (
        Index("device_tracks_stuck", ("track",), ("state", "result"), STUCK_WHERE),
        Index(
            "device_tracks_stuck_by_operation",
            ("track", "operation_id"),
            ("state", "result"),
            STUCK_WHERE,
        ),
        Index("device_tracks_stuck_by_app", ("track", "app_id"), ("state", "result"), STUCK_WHERE),
    ),
    values={"state": BUSY_STATES, "result": STORED_RESULTS},
    ids=frozenset({"device_id"}),
    conditions=("state_since < now() - make_interval(secs => :stuck_for)",),
)
TASKS_BY_ID = Listing(
    "tasks",
    ("task_id",),
    ("task_id",),
    (
        Index("tasks_by_id", ()),
        Index("tasks_by_status", (), ("status", "task_type")),
        Index("tasks_by_app", ("app_id",), ("status", "task_type")),
    ),
    values={"status": TASK_STATUSES, "task_type": TASK_TYPES},
    ids=frozenset({"task_id"}),
)

DEVICE = "SELECT * FROM device_tracks WHERE device_id = $1 ORDER BY track"
# An operation's applications (from its rollup): lets a filter on an application and an
# operation at once walk the operation's range alone, or answer at once.
APPS = """
SELECT app_id COLLATE "C" AS app_id, max_app_id COLLATE "C" AS max_app_id
FROM operations WHERE operation_id = $1 AND track = $2
"""
# The page's devices with both their tracks: two key lookups per device.
DEVICES_WITH_TRACKS = "WITH page AS ({page}) SELECT t.* FROM page JOIN device_tracks t USING (device_id) ORDER BY {order}, t.track"  # noqa: E501
HISTORY_BATCH = 1000  # events of a device's history held at once by `device_at`
DEVICE_HISTORY_BY_POSITION = """
SELECT position, received_at, raw, codec FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND position <= $2 ORDER BY position
"""
DEVICE_HISTORY_BY_TIME = """
SELECT position, received_at, raw, codec FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND received_at <= $2 ORDER BY position
"""
DEVICE_TRANSITIONS_PAGE = """
SELECT * FROM device_transitions WHERE device_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""
TASK = "SELECT * FROM tasks WHERE task_id = $1"
TASK_TRANSITIONS_PAGE = """
SELECT * FROM task_transitions WHERE task_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the API shows it: both tracks, and what the latest of them says."""

    device_id: str
    tracks: dict[Track, TrackState]

    @property
    def latest(self) -> TrackState:
        return max(self.tracks.values(), key=lambda t: t.last_position)

    @property
    def app_id(self) -> str:
        return self.latest.app_id

    @property
    def last_position(self) -> int:
        return self.latest.last_position

    @property
    def updated_at(self) -> datetime:
        return self.latest.updated_at

    @property
    def software(self) -> TrackState | None:
        return self.tracks.get("software")

    @property
    def firmware(self) -> TrackState | None:
        return self.tracks.get("firmware")


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    track: Track | None = None  # what the filters below look at; None: no track filter at all
    state: str | None = None
    app_id: str | None = None
    operation_id: str | None = None
    result: str | None = None  # the track's last result: SUCCESS or FAIL
    stuck_for: float | None = None  # seconds in a state other than idle, at least

    def given(self) -> dict[str, object]:
        return present(
            track=self.track,
            state=self.state,
            app_id=self.app_id,
            operation_id=self.operation_id,
            result=self.result,
            stuck_for=self.stuck_for,
        )


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: str | None = None
    task_type: str | None = None
    app_id: str | None = None


def device_listing(where: DeviceFilter) -> Listing:
    """Which listing answers this filter (and so which cursor shape it pages with)."""
    if where.track is None:
        return DEVICES_BY_ID
    return TRACKS_STUCK if where.stuck_for is not None else TRACKS_BY_ID


async def device(db: Database, device_id: str) -> Device:
    rows = await db.fetch("read device", DEVICE, device_id)
    if not rows:
        raise NotFound(f"no device {device_id!r} has been seen")
    return Device(device_id, {row["track"]: DEVICE_TRACKS.from_row(row) for row in rows})


async def devices(
    db: Database, where: DeviceFilter, after: Key | None, limit: int
) -> tuple[list[Device], Key | None]:
    """A page of devices in the listing's order, and the key to resume after (None: the end)."""
    planned = await device_page(db, where)
    if planned is None:
        return [], None
    listing, filters = planned
    query = listing.query(frozenset(filters), resumed=after is not None)
    order = ", ".join(listing.ordered(c, "page") for c in listing.order)
    sql = DEVICES_WITH_TRACKS.format(page=query.sql, order=order)
    rows = await db.fetch("list devices", sql, *query.args(filters, after or (), limit))
    found = [
        Device(device_id, {row["track"]: DEVICE_TRACKS.from_row(row) for row in group})
        for device_id, group in groupby(rows, key=lambda row: row["device_id"])
    ]
    if len(found) < limit:
        return found, None
    last = found[-1]
    if listing is TRACKS_STUCK:
        assert where.track is not None  # noqa: S101 - TRACKS_STUCK is chosen only then
        return found, (last.tracks[where.track].state_since, last.device_id)
    return found, (last.device_id,)


async def device_page(
    db: Database, where: DeviceFilter
) -> tuple[Listing, dict[str, object]] | None:
    """Which listing answers `where`, with which filters; None when the answer is empty."""
    if where.stuck_for is not None and where.state in ("idle", ""):
        return None  # an idle device is not stuck
    listing, filters = device_listing(where), where.given()
    if listing is not TRACKS_STUCK:
        filters.pop("stuck_for", None)
    if where.app_id is not None and where.operation_id is not None:
        scope = await db.fetchrow("read operation", APPS, where.operation_id, where.track)
        if scope is None or not scope["app_id"] <= where.app_id <= scope["max_app_id"]:
            return None  # no device of this application took part in it
        if scope["app_id"] == scope["max_app_id"]:
            del filters["app_id"]  # the operation's one application: the filter is a no-op
    return listing, filters


async def device_at(
    db: Database, device_id: str, moment: int | datetime, said: str | None = None
) -> Device:
    """The device as it was at a log position (inclusive) or a time, folded from the log
    (`said`: the moment as the reader wrote it, for the `NotFound`).

    Its history is read through a cursor and folded as it comes: memory holds the device's
    tracks and a batch of events, however long the history (a noisy device's may be millions).
    """
    by_position = isinstance(moment, int)
    projection = Projection(changes=False)
    async with db.transaction("read device history") as conn:
        await bodies.ready(conn)
        history = DEVICE_HISTORY_BY_POSITION if by_position else DEVICE_HISTORY_BY_TIME
        async for row in conn.cursor(history, device_id, moment, prefetch=HISTORY_BATCH):
            if not bodies.knows(row["codec"]):
                await bodies.ready(conn, (row["codec"],))
            notification = decode(bodies.unpack(row["codec"], row["raw"])).notification
            if notification is not None:
                projection.apply(Recorded(row["position"], row["received_at"], notification))
            projection.device_transitions.clear()  # the state is asked for, not the trail
    if not projection.tracks:
        when = moment if said is None else said
        raise NotFound(f"no device {device_id!r} has been seen at or before {when}")
    return Device(device_id, {track: state for (_, track), state in projection.tracks.items()})


async def device_transitions(
    db: Database, device_id: str, after: int, limit: int
) -> list[DeviceTransition]:
    rows = await db.fetch("read transitions", DEVICE_TRANSITIONS_PAGE, device_id, after, limit)
    if not rows and after == 0:
        await device(db, device_id)  # no trail at all: NotFound, unless the device exists
    return [DEVICE_TRANSITIONS.from_row(row) for row in rows]


async def task(db: Database, task_id: str) -> Task:
    row = await db.fetchrow("read task", TASK, task_id)
    if row is None:
        raise NotFound(f"no batch task {task_id!r} has been seen")
    return TASKS.from_row(row)


async def tasks(
    db: Database, where: TaskFilter, after: Key | None, limit: int
) -> tuple[list[Task], Key | None]:
    filters = present(status=where.status, task_type=where.task_type, app_id=where.app_id)
    query = TASKS_BY_ID.query(frozenset(filters), resumed=after is not None)
    sql = TASKS_BY_ID.rows(query)
    rows = await db.fetch("list tasks", sql, *query.args(filters, after or (), limit))
    found = [TASKS.from_row(row) for row in rows]
    return found, ((found[-1].task_id,) if len(found) == limit else None)


async def task_transitions(
    db: Database, task_id: str, after: int, limit: int
) -> list[TaskTransition]:
    rows = await db.fetch("read task transitions", TASK_TRANSITIONS_PAGE, task_id, after, limit)
    if not rows and after == 0:
        await task(db, task_id)  # no history at all: NotFound, unless the task exists
    return [TASK_TRANSITIONS.from_row(row) for row in rows]
