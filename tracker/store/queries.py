"""Reading devices and tasks: plain SQL, keyset-paginated (store/listing.py), domain rows out."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any, NamedTuple

from tracker.domain.delivery import decode_logged
from tracker.domain.device import BUSY_STATES, DeviceTransition, KnownDevice, TrackState
from tracker.domain.notifications import (
    RESULTS,
    SUBTASK_STATUSES,
    TASK_STATUSES,
    TASK_TYPES,
    UPGRADE_STATES,
    SubtaskStatus,
    Track,
)
from tracker.domain.operation import OperationDevice
from tracker.domain.projection import Projection
from tracker.domain.recorded import Recorded
from tracker.domain.task import Task, TaskTransition
from tracker.store import bodies, literals
from tracker.store.database import Database, Record
from tracker.store.errors import NotFound
from tracker.store.listing import Index, Listing, present
from tracker.store.rows import (
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    DEVICES,
    OPERATION_DEVICES,
    TASK_TRANSITIONS,
    TASKS,
)

STORED_STATES = ("", *UPGRADE_STATES)  # as a blank column holds them: '' is none reported yet
# A member's state: OceanConnect's, or the status of its IoTDA subtask (domain/subtask.py).
STORED_MEMBER_STATES = ("", *UPGRADE_STATES, *SUBTASK_STATUSES)
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
KNOWN = "SELECT * FROM devices WHERE device_id = $1"
DEVICE_TASKS_SHOWN = 20  # a device's IoTDA subtasks in its document, the latest first
# The IoTDA subtasks of each device of a page, the latest first: one range each of the index
# that holds only them (`state_since` is set for an IoTDA member alone: domain/subtask.py).
DEVICE_TASKS = f"""
SELECT o.* FROM unnest($1::text[]) WITH ORDINALITY AS k(device_id, n)
CROSS JOIN LATERAL (
    SELECT * FROM operation_devices o
    WHERE o.device_id = k.device_id COLLATE "C" AND o.state_since IS NOT NULL
    ORDER BY o.updated_at DESC, o.last_position DESC LIMIT {DEVICE_TASKS_SHOWN}
) AS o
ORDER BY k.n, o.updated_at DESC, o.last_position DESC
"""  # noqa: S608 - constants only
# An operation's applications (from its rollup): lets a filter on an application and an
# operation at once walk the operation's range alone, or answer at once.
APPS = """
SELECT app_id COLLATE "C" AS app_id, max_app_id COLLATE "C" AS max_app_id
FROM operations WHERE operation_id = $1 AND track = $2
"""
# The page's devices with the fleet's entry and both their tracks, if any (a device IoTDA's
# tasks alone name has none): three key lookups per device.
DEVICES_WITH_TRACKS = """
WITH page AS ({page})
SELECT page.device_id AS listed_id, d.app_id AS listed_app_id, d.first_seen_at AS listed_at, t.*
FROM page LEFT JOIN devices d USING (device_id) LEFT JOIN device_tracks t USING (device_id)
ORDER BY {order}, t.track
"""
HISTORY_BATCH = 1000  # events of a device's history held at once by `device_at`
DEVICE_HISTORY_BY_POSITION = """
SELECT position, received_at, event_type, raw, codec FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND position <= $2 ORDER BY position
"""
DEVICE_HISTORY_BY_TIME = """
SELECT position, received_at, event_type, raw, codec FROM events
WHERE stream_type = 'device' AND stream_id = $1 AND received_at <= $2 ORDER BY position
"""
DEVICE_TRANSITIONS_PAGE = """
SELECT * FROM device_transitions WHERE device_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""
TASK = "SELECT * FROM tasks WHERE task_id = $1"
TASK_TRANSITIONS_PAGE = """
SELECT * FROM task_transitions WHERE task_id = $1 AND position > $2 ORDER BY position LIMIT $3
"""


class DeviceTask(NamedTuple):
    """A device's part in an IoTDA upgrade task (its member row), as its document lists it."""

    task_id: str
    track: Track
    status: SubtaskStatus
    error_code: str | None
    error_msg: str | None
    state_since: datetime
    last_position: int
    updated_at: datetime

    @classmethod
    def of(cls, member: OperationDevice) -> DeviceTask:
        assert member.state_since is not None  # noqa: S101 - read only where it is set
        return cls(
            member.operation_id,
            member.track,
            member.state,  # type: ignore[arg-type] # an IoTDA member's state is its status
            member.error_code,
            member.result_desc,
            member.state_since,
            member.last_position,
            member.updated_at,
        )


def latest_tasks(members: Iterable[OperationDevice]) -> tuple[DeviceTask, ...]:
    """The IoTDA subtasks among a device's members, as DEVICE_TASKS orders and bounds them."""
    iotda = [m for m in members if m.state_since is not None]
    iotda.sort(key=lambda m: (m.updated_at, m.last_position), reverse=True)
    return tuple(DeviceTask.of(m) for m in iotda[:DEVICE_TASKS_SHOWN])


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the API shows it: both tracks, its IoTDA subtasks, and what the latest of
    them says. `known` is the fleet's entry: all a device has that no track names."""

    device_id: str
    tracks: dict[Track, TrackState]
    tasks: tuple[DeviceTask, ...] = ()
    known: KnownDevice | None = None

    @property
    def latest(self) -> TrackState | DeviceTask | None:
        shown: list[TrackState | DeviceTask] = [*self.tracks.values(), *self.tasks]
        return max(shown, key=lambda t: t.last_position) if shown else None

    @property
    def app_id(self) -> str:
        if self.tracks:
            return max(self.tracks.values(), key=lambda t: t.last_position).app_id
        return "" if self.known is None else self.known.app_id

    @property
    def last_position(self) -> int:
        latest = self.latest
        return 0 if latest is None else latest.last_position

    @property
    def updated_at(self) -> datetime:
        latest = self.latest
        if latest is not None:
            return latest.updated_at
        assert self.known is not None  # noqa: S101 - a device with nothing is not found
        return self.known.first_seen_at

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
    tasks = (await device_tasks(db, [device_id])).get(device_id, ())
    known = None
    if not rows:  # IoTDA's tasks alone may name it: the fleet's entry says its application
        found = await db.fetchrow("read device", KNOWN, device_id)
        if found is None:
            raise NotFound(f"no device {device_id!r} has been seen")
        known = DEVICES.from_row(found)
    tracks = {row["track"]: DEVICE_TRACKS.from_row(row) for row in rows}
    return Device(device_id, tracks, tasks, known)


async def device_tasks(db: Database, device_ids: list[str]) -> dict[str, tuple[DeviceTask, ...]]:
    """Each device's IoTDA subtasks, the latest first (at most DEVICE_TASKS_SHOWN each)."""
    rows = await db.fetch("read device tasks", DEVICE_TASKS, device_ids)
    members = [OPERATION_DEVICES.from_row(row) for row in rows]
    return {
        device_id: tuple(DeviceTask.of(m) for m in group)
        for device_id, group in groupby(members, key=lambda m: m.device_id)
    }  # in page order, each device's together (the statement's order)


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
    listed = [(device_id, list(group)) for device_id, group in groupby(rows, _listed_id)]
    tasks = await device_tasks(db, [device_id for device_id, _ in listed])
    found = [
        Device(
            device_id,
            {row["track"]: DEVICE_TRACKS.from_row(row) for row in group if row["track"]},
            tasks.get(device_id, ()),
            _known(device_id, group[0]),
        )
        for device_id, group in listed
    ]
    if len(found) < limit:
        return found, None
    last = found[-1]
    if listing is TRACKS_STUCK:
        assert where.track is not None  # noqa: S101 - TRACKS_STUCK is chosen only then
        return found, (last.tracks[where.track].state_since, last.device_id)
    return found, (last.device_id,)


def _known(device_id: str, row: Record) -> KnownDevice | None:
    """The fleet's entry for a listed device, as the page's first row of it carries it."""
    if row["listed_app_id"] is None:
        return None
    return KnownDevice(device_id, row["listed_app_id"], row["listed_at"])


def _listed_id(row: Record) -> str:
    listed: str = row["listed_id"]
    return listed


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
            raw = bodies.unpack(row["codec"], row["raw"])
            notification = decode_logged(row["event_type"], raw)
            if notification is not None:
                projection.apply(Recorded(row["position"], row["received_at"], notification))
            projection.device_transitions.clear()  # the state is asked for, not the trail
    known = projection.devices.get(device_id)
    if known is None:
        when = moment if said is None else said
        raise NotFound(f"no device {device_id!r} has been seen at or before {when}")
    tracks = {track: state for (_, track), state in projection.tracks.items()}
    return Device(device_id, tracks, latest_tasks(projection.members.values()), known)


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
