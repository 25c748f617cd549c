"""Projection rows <-> database tuples, one codec per table, used by live writes, COPY and reads.

Each table is described once (name, key, columns with their PostgreSQL types); the set-wise
upsert and the COPY column lists are generated from that description.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import orjson

from tracker.domain.device import DeviceTransition, TrackState, UpgradeResult
from tracker.domain.operation import OperationDevice
from tracker.domain.task import Task, TaskTransition
from tracker.store.database import Record

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Table(Generic[R]):
    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (column, PostgreSQL type)
    to_row: Callable[[R], tuple[Any, ...]]
    from_row: Callable[[Record], R]
    append_only: bool = False  # transitions: a second row for the same key is a bug, not an update

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def write_sql(self, schema: str | None = None, first: int = 1) -> str:
        """INSERT all rows from parallel arrays in one statement; upsert unless append-only.

        The arrays are parameters `$first` onwards, so several tables can share a statement.
        """
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(self.columns, first))
        target = f"{schema}.{self.name}" if schema else self.name
        # Identifiers come from the constant table descriptions below, never from input.
        insert = f"INSERT INTO {target} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
        if self.append_only:
            return insert
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.column_names if c not in self.key)
        return f"{insert} ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"

    def as_arrays(self, items: Sequence[R]) -> list[list[Any]]:
        rows = [self.to_row(item) for item in items]
        return (
            [list(column) for column in zip(*rows, strict=True)]
            if rows
            else [[] for _ in self.columns]
        )


def _itself(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Domain rows are named tuples in column order (tested): they go to the driver as they are."""
    return row


def _result_json(result: UpgradeResult | None) -> str | None:
    if result is None:
        return None
    return orjson.dumps(
        {**result._asdict(), "received_at": result.received_at.isoformat()}
    ).decode()


def _result_from(text: str | None) -> UpgradeResult | None:
    if text is None:
        return None
    document = orjson.loads(text)
    document["received_at"] = datetime.fromisoformat(document["received_at"])
    return UpgradeResult(**document)


DEVICE_TRACKS: Table[TrackState] = Table(
    name="device_tracks",
    key=("device_id", "track"),
    columns=(
        ("device_id", "text"),
        ("track", "text"),
        ("app_id", "text"),
        ("state", "text"),
        ("state_since", "timestamptz"),
        ("operation_id", "text"),
        ("sub_operation_id", "text"),
        ("version", "text"),
        ("last_result", "jsonb"),
        ("last_position", "bigint"),
        ("updated_at", "timestamptz"),
    ),
    to_row=lambda t: (
        t.device_id,
        t.track,
        t.app_id,
        t.state,
        t.state_since,
        t.operation_id,
        t.sub_operation_id,
        t.version,
        _result_json(t.last_result),
        t.last_position,
        t.updated_at,
    ),
    from_row=lambda r: TrackState(**{**dict(r), "last_result": _result_from(r["last_result"])}),
)

DEVICE_TRANSITIONS: Table[DeviceTransition] = Table(
    name="device_transitions",
    key=("device_id", "position"),
    columns=(
        ("device_id", "text"),
        ("position", "bigint"),
        ("track", "text"),
        ("from_state", "text"),
        ("to_state", "text"),
        ("valid", "boolean"),
        ("operation_id", "text"),
        ("sub_operation_id", "text"),
        ("received_at", "timestamptz"),
    ),
    to_row=_itself,
    from_row=lambda r: DeviceTransition(**dict(r)),
    append_only=True,
)

OPERATION_DEVICES: Table[OperationDevice] = Table(
    name="operation_devices",
    key=("operation_id", "device_id", "track"),
    columns=(
        ("operation_id", "text"),
        ("device_id", "text"),
        ("track", "text"),
        ("state", "text"),
        ("result", "text"),
        ("last_position", "bigint"),
        ("updated_at", "timestamptz"),
    ),
    to_row=_itself,
    from_row=lambda r: OperationDevice(**dict(r)),
)

TASKS: Table[Task] = Table(
    name="tasks",
    key=("task_id",),
    columns=(
        ("task_id", "text"),
        ("app_id", "text"),
        ("task_type", "text"),
        ("status", "text"),
        ("status_desc", "text"),
        ("event_time", "timestamptz"),
        ("request_id", "text"),
        ("seen", "jsonb"),
        ("last_position", "bigint"),
        ("updated_at", "timestamptz"),
    ),
    to_row=lambda t: (
        t.task_id,
        t.app_id,
        t.task_type,
        t.status,
        t.status_desc,
        t.event_time,
        t.request_id,
        orjson.dumps(sorted(t.seen)).decode(),
        t.last_position,
        t.updated_at,
    ),
    from_row=lambda r: Task(**{**dict(r), "seen": frozenset(orjson.loads(r["seen"]))}),
)

TASK_TRANSITIONS: Table[TaskTransition] = Table(
    name="task_transitions",
    key=("task_id", "position"),
    columns=(
        ("task_id", "text"),
        ("position", "bigint"),
        ("from_status", "text"),
        ("to_status", "text"),
        ("valid", "boolean"),
        ("applied", "boolean"),
        ("event_time", "timestamptz"),
        ("request_id", "text"),
        ("received_at", "timestamptz"),
    ),
    to_row=_itself,
    from_row=lambda r: TaskTransition(**dict(r)),
    append_only=True,
)

ALL_TABLES: tuple[Table[Any], ...] = (
    DEVICE_TRACKS,
    DEVICE_TRANSITIONS,
    OPERATION_DEVICES,
    TASKS,
    TASK_TRANSITIONS,
)
