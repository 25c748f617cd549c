"""The JSON documents the API answers with and `--json` prints: pydantic models, one per shape.

The OpenAPI document is generated from these models, and handlers serialise through them, so
the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from tracker.domain.device import DeviceTransition, TrackState, UpgradeResult
from tracker.domain.notifications import TaskStatus, TaskType, UpgradeState
from tracker.domain.task import Task, TaskTransition
from tracker.store.queries import Device, OperationSummary


def _platform_time(moment: datetime) -> str:
    """The platform's event time, as it writes times: UTC with milliseconds and a Z."""
    # The year by hand: strftime("%Y") writes year 1 as "1", which is not RFC 3339.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


PlatformTime = Annotated[datetime, PlainSerializer(_platform_time, return_type=str)]
Result = Literal["SUCCESS", "FAIL"]
TrackName = Literal["software", "firmware"]


class Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


class ResultDocument(Document):
    result: Result
    source_version: str
    target_version: str
    current_version: str
    error_code: str | None
    result_desc: str | None
    description: str | None
    upgrade_time: str | int
    anomaly: bool = Field(description="SUCCESS reported although current != target version")
    operation_id: str
    sub_operation_id: str
    position: int
    received_at: datetime

    @classmethod
    def of(cls, r: UpgradeResult) -> ResultDocument:
        return cls(
            result=r.result,
            source_version=r.source_version,
            target_version=r.target_version,
            current_version=r.current_version,
            error_code=r.error_code,
            result_desc=r.result_desc,
            description=r.description,
            upgrade_time=r.upgrade_time,
            anomaly=r.anomaly,
            operation_id=r.operation_id,
            sub_operation_id=r.sub_operation_id,
            position=r.position,
            received_at=r.received_at,
        )


class TrackDocument(Document):
    state: UpgradeState | None = Field(description="null until a state is reported")
    state_since: datetime | None = Field(description="when the current state was entered")
    operation_id: str
    sub_operation_id: str
    version: str | None = Field(description="current version, as of the last SUCCESS")
    last_result: ResultDocument | None
    last_position: int
    updated_at: datetime

    @classmethod
    def of(cls, t: TrackState | None) -> TrackDocument | None:
        if t is None:
            return None
        return cls(
            state=t.state,
            state_since=t.state_since,
            operation_id=t.operation_id,
            sub_operation_id=t.sub_operation_id,
            version=t.version,
            last_result=ResultDocument.of(t.last_result) if t.last_result else None,
            last_position=t.last_position,
            updated_at=t.updated_at,
        )


class DeviceDocument(Document):
    device_id: str
    app_id: str
    software: TrackDocument | None
    firmware: TrackDocument | None
    last_position: int
    updated_at: datetime

    @classmethod
    def of(cls, found: Device) -> DeviceDocument:
        latest = max(found.tracks.values(), key=lambda t: t.last_position)
        return cls(
            device_id=found.device_id,
            app_id=latest.app_id,
            software=TrackDocument.of(found.tracks.get("software")),
            firmware=TrackDocument.of(found.tracks.get("firmware")),
            last_position=latest.last_position,
            updated_at=latest.updated_at,
        )


class DeviceTransitionDocument(Document):
    position: int
    track: TrackName
    from_state: UpgradeState | None
    to_state: UpgradeState
    valid: bool
    operation_id: str
    sub_operation_id: str
    received_at: datetime

    @classmethod
    def of(cls, t: DeviceTransition) -> DeviceTransitionDocument:
        return cls(
            position=t.position,
            track=t.track,
            from_state=t.from_state,
            to_state=t.to_state,
            valid=t.valid,
            operation_id=t.operation_id,
            sub_operation_id=t.sub_operation_id,
            received_at=t.received_at,
        )


class OperationDocument(Document):
    operation_id: str
    track: TrackName
    devices: int
    states: dict[str, int]
    results: dict[str, int]

    @classmethod
    def of(cls, s: OperationSummary) -> OperationDocument:
        return cls(
            operation_id=s.operation_id,
            track=s.track,
            devices=s.devices,
            states=s.states,
            results=s.results,
        )


class TaskDocument(Document):
    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str
    event_time: PlatformTime
    request_id: str | None
    last_position: int
    updated_at: datetime

    @classmethod
    def of(cls, t: Task) -> TaskDocument:
        return cls(
            task_id=t.task_id,
            app_id=t.app_id,
            task_type=t.task_type,
            status=t.status,
            status_desc=t.status_desc,
            event_time=t.event_time,
            request_id=t.request_id,
            last_position=t.last_position,
            updated_at=t.updated_at,
        )


class TaskTransitionDocument(Document):
    position: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    valid: bool
    applied: bool = Field(description="false: the event arrived late and did not change status")
    event_time: PlatformTime
    request_id: str | None
    received_at: datetime

    @classmethod
    def of(cls, t: TaskTransition) -> TaskTransitionDocument:
        return cls(
            position=t.position,
            from_status=t.from_status,
            to_status=t.to_status,
            valid=t.valid,
            applied=t.applied,
            event_time=t.event_time,
            request_id=t.request_id,
            received_at=t.received_at,
        )


class FeedDeviceTransition(DeviceTransitionDocument):
    """`device_transition` events of GET /v1/stream."""

    device_id: str


class FeedTaskTransition(TaskTransitionDocument):
    """`task_transition` events of GET /v1/stream."""

    task_id: str


class EventDocument(Document):
    """One delivery in the log; `payload` is the body exactly as received."""

    position: int
    event_type: str
    stream_type: Literal["device", "task", "unrecognised"]
    stream_id: str
    received_at: datetime
    occurred_at: datetime | None
    payload: dict[str, Any]


class RejectedDocument(Document):
    id: int
    received_at: datetime
    status: int
    code: str
    reason: str
    details: list[dict[str, Any]]
    truncated: bool
    body: str | None = Field(description="the bytes as text; null when they are not UTF-8")
    body_base64: str


class AcceptedDocument(Document):
    position: int
    event_type: str
    stream_type: Literal["device", "task", "unrecognised"]
    stream_id: str
    recognised: bool = Field(description="false: logged, but not a type we project")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: str | None = None
    problem: str | None = None


class ErrorBody(Document):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorDocument(Document):
    error: ErrorBody


class StatusDocument(Document):
    status: str


T = TypeVar("T", bound=Document)


class Page(Document, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")
