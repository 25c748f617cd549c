"""The JSON documents the API answers with and `--json` prints: pydantic models, one per shape.

The OpenAPI document is generated from these models, and handlers serialise through them, so
the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from tracker.domain.delivery import StreamType
from tracker.domain.device import Kind, Reason
from tracker.domain.notifications import Result, TaskStatus, TaskType, Track, UpgradeState


def _platform_time(moment: datetime) -> str:
    """The platform's event time, as it writes times: UTC with milliseconds and a Z."""
    # The year by hand: strftime("%Y") writes year 1 as "1", which is not RFC 3339.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


PlatformTime = Annotated[datetime, PlainSerializer(_platform_time, return_type=str)]


class Document(BaseModel):
    # from_attributes: a document is read off the domain row (or store view) it shows, field by
    # field, so a field is declared once in tracker/domain and once here, and nowhere else.
    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    @classmethod
    def of(cls, source: object) -> Self:
        return cls.model_validate(source, from_attributes=True)

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


class ResultDocument(Document):
    """A result as reported; descriptive fields the platform left out (or sent unusable) are
    null."""

    result: Result
    source_version: str | None
    target_version: str | None
    current_version: str | None
    error_code: str | None
    result_desc: str | None
    description: str | None
    upgrade_time: str | int | None
    anomaly: bool | None = Field(
        description="SUCCESS with current != target version, or FAIL with current == target; "
        "null when a version is missing"
    )
    operation_id: str
    sub_operation_id: str
    position: int
    received_at: datetime


class TrackDocument(Document):
    """The sub-operation the device is in now on this track (docs/architecture.md, "One truth
    whatever the arrival order"), and its last result."""

    state: UpgradeState | None = Field(
        description="the furthest state the current sub-operation reported (idle ends one); "
        "null until it reports one"
    )
    state_since: datetime | None = Field(
        description="when that state of the current sub-operation was first received"
    )
    operation_id: str
    sub_operation_id: str
    version: str | None = Field(description="current version, as of the last result with one")
    last_result: ResultDocument | None
    last_position: int
    updated_at: datetime


class DeviceDocument(Document):
    device_id: str
    app_id: str
    software: TrackDocument | None
    firmware: TrackDocument | None
    last_position: int
    updated_at: datetime


class DeviceTransitionDocument(Document):
    """An entry of a device's audit trail: a state report (`kind` "state") or a result."""

    position: int
    track: Track
    kind: Kind
    from_state: UpgradeState | None
    to_state: UpgradeState | None = Field(description="a result: the state, unchanged")
    valid: bool = Field(description="false: a move the platform's machine does not make")
    applied: bool = Field(
        description="true: the track now shows what it said; false: see reason. Deliveries "
        "come in any order: the track never depends on it (docs/architecture.md)"
    )
    reason: Reason | None = Field(
        description="null when applied; stale: its sub-operation had already gone past it (a "
        "later step, a result that outranks it), it changed nothing; earlier_operation: it "
        "moved its own operation's member, but the device is in another sub-operation now"
    )
    inconsistent: bool = Field(description="true: step and stepDesc disagreed (step was followed)")
    operation_id: str
    sub_operation_id: str
    received_at: datetime
    result: ResultDocument | None = Field(description="kind result: the result as reported")


class ErrorGroupDocument(Document):
    error_code: str | None = Field(description="null: the platform sent none (firmware results)")
    result_desc: str | None
    devices: int = Field(description="members whose last result here is FAIL with this error")


class OperationDocument(Document):
    """An operation's rollup on its track: counters kept with every delivery, O(1) to read."""

    operation_id: str
    track: Track
    app_id: str
    devices: int = Field(description="every device that reported under the operation")
    states: dict[str, int] = Field(description="members by current state here (none: omitted)")
    results: dict[str, int] = Field(description="members by last result here: SUCCESS, FAIL")
    errors: list[ErrorGroupDocument] = Field(description="FAIL results by error, top 20")
    target_versions: dict[str, int] = Field(description="members by their result's target")
    first_seen_at: datetime
    last_activity_at: datetime
    stuck: int | None = Field(
        default=None,
        description="with ?stuck_for=SECONDS: devices whose current operation this is, in a "
        "state other than idle for longer than that, with no result yet (GET "
        "/v1/devices?operation_id=&stuck_for= lists them); null otherwise",
    )


class ActivityDocument(Document):
    """An operation's activity over one bucket of `step` minutes (from its first minute)."""

    minute: datetime = Field(description="the bucket's start, UTC")
    reports: int = Field(description="state reports recorded")
    invalid: int = Field(description="of those, moves the platform's machine does not make")
    successes: int
    failures: int


class ActivityList(Document):
    step: int = Field(description="minutes per bucket")
    items: list[ActivityDocument] = Field(description="buckets with something in them, in order")


class OperationMemberDocument(Document):
    """A device's part in an operation: its state and last result there (it may have moved on)."""

    operation_id: str
    track: Track
    device_id: str
    app_id: str
    state: UpgradeState | None
    result: Result | None
    error_code: str | None
    result_desc: str | None
    target_version: str | None
    current_version: str | None
    first_seen_at: datetime
    last_position: int
    updated_at: datetime


class TaskDocument(Document):
    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str | None
    event_time: PlatformTime
    request_id: str | None
    last_position: int
    updated_at: datetime


class TaskTransitionDocument(Document):
    position: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    valid: bool
    applied: bool = Field(description="false: the event arrived late and did not change status")
    event_time: PlatformTime
    request_id: str | None
    received_at: datetime


class FeedDeviceTransition(DeviceTransitionDocument):
    """`device_transition` and `device_result` events of GET /v1/stream."""

    device_id: str


class FeedTaskTransition(TaskTransitionDocument):
    """`task_transition` events of GET /v1/stream."""

    task_id: str


class EventDocument(Document):
    """One delivery in the log; `payload` is the body exactly as received."""

    position: int
    event_type: str
    stream_type: StreamType
    stream_id: str
    received_at: datetime
    occurred_at: datetime | None
    readmitted_from: int | None = Field(
        description="readmitted by `tracker readmit`: the id of the refused delivery in "
        "/v1/rejected (received_at is then when it was first received)"
    )
    pruned: bool = Field(
        description="the body (an unrecognised one) was archived and removed by `tracker "
        "prune-unrecognised`: payload is then null"
    )
    payload: dict[str, Any] | None


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
    size: int | None = Field(
        description="the whole body's size in bytes (the bytes kept may be a prefix: truncated); "
        "null when it was never read in full (413)"
    )
    sha256: str | None = Field(description="the whole body's SHA-256, hex; null as size")
    readmitted_position: int | None = Field(
        description="`tracker readmit` appended it to the log at this position"
    )


class AcceptedDocument(Document):
    position: int
    event_type: str
    stream_type: StreamType
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


class ReadyDocument(Document):
    """Ready: the database answers. The AMQP channel's state is shown, not judged: HTTP ingest
    works whatever it is, and an operator alerts on it from /metrics."""

    status: str
    amqp: Literal["connecting", "open", "held", "waiting", "stopped"] | None = Field(
        None,
        description="only when TRACKER_AMQP_URL is set: the AMQP consumer's state: open, held "
        "(the database is unavailable: no credit given), connecting, waiting (to connect again "
        "after a drop; the log says why), stopped",
    )

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class SessionDocument(Document):
    """The dashboard's sign-in state in this browser."""

    required: bool = Field(description="false: no read token is set, reads are open")
    signed_in: bool = Field(description="this browser may read (a session cookie, or none needed)")


class SignIn(Document):
    token: str = Field(description="the read token (TRACKER_READ_TOKEN); never the ingest token")


T = TypeVar("T", bound=Document)


class Page(Document, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null: last")
