"""The JSON documents the API answers with and `--json` prints: pydantic models, one per shape.

The OpenAPI document is generated from these models, and handlers serialise through them, so
the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, computed_field

from tracker.domain.delivery import StreamType
from tracker.domain.device import Kind, Reason
from tracker.domain.notifications import (
    TASK_STATUSES,
    Result,
    StopOutcome,
    SubtaskStatus,
    TaskStatus,
    TaskType,
    Track,
    UpgradeState,
)
from tracker.domain.task import Source
from tracker.store.rollups import Platform


def _platform_time(moment: datetime) -> str:
    """The platform's event time, as it writes times: UTC with milliseconds and a Z."""
    # The year by hand: strftime("%Y") writes year 1 as "1", which is not RFC 3339.
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


PlatformTime = Annotated[datetime, PlainSerializer(_platform_time, return_type=str)]


def _in_status_order(statuses: object) -> object:
    """A set of task statuses as a list in the order they are declared (the task's machine)."""
    if isinstance(statuses, list | tuple | set | frozenset):
        return sorted(statuses, key=lambda s: TASK_STATUSES.index(s) if s in TASK_STATUSES else -1)
    return statuses


StatusList = Annotated[list[TaskStatus], BeforeValidator(_in_status_order)]


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


class DeviceTaskDocument(Document):
    """The device's part in one IoTDA upgrade task (its subtask), as IoTDA's API last said it."""

    task_id: str = Field(description="the IoTDA batch task: also its rollout's operation_id")
    track: Track = Field(description="firmware for firmwareUpgrade, software for softwareUpgrade")
    status: SubtaskStatus = Field(description="the subtask's status, as IoTDA spells it")
    error_code: str | None
    error_msg: str | None
    state_since: datetime = Field(description="when the status was first observed")
    last_position: int
    updated_at: datetime


class DeviceDocument(Document):
    device_id: str
    app_id: str
    software: TrackDocument | None = Field(
        description="OceanConnect's software track; null: never reported (an IoTDA device has "
        "no track: see tasks)"
    )
    firmware: TrackDocument | None = Field(description="OceanConnect's firmware track, as software")
    tasks: list[DeviceTaskDocument] = Field(
        description="the device's IoTDA upgrade subtasks, read through IoTDA's API: the latest "
        "updated first, at most 20 (GET /v1/devices/{device_id}/transitions has them all)"
    )
    last_position: int = Field(description="of the latest of its tracks and tasks")
    updated_at: datetime


class DeviceTransitionDocument(Document):
    """An entry of a device's audit trail: a state report (`kind` "state"), a result, or an
    IoTDA subtask's status change that the tracker observed through IoTDA's API (`kind`
    "subtask": from_state and to_state are subtask statuses, operation_id is the task's id, and
    Success or Fail carries its `result`)."""

    position: int
    track: Track
    kind: Kind
    from_state: UpgradeState | SubtaskStatus | None = Field(
        description="null for the first; kind subtask: IoTDA's subtask status"
    )
    to_state: UpgradeState | SubtaskStatus | None = Field(
        description="a result: the state, unchanged; kind subtask: IoTDA's subtask status"
    )
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
    sub_operation_id: str = Field(description="kind subtask: '' (IoTDA has none)")
    received_at: datetime
    result: ResultDocument | None = Field(
        description="kind result: the result as reported; kind subtask: Success or Fail as a "
        "result (error_code, result_desc the subtask's error_msg, description its output)"
    )


class ErrorGroupDocument(Document):
    error_code: str | None = Field(description="null: the platform sent none (firmware results)")
    result_desc: str | None
    devices: int = Field(description="members whose last result here is FAIL with this error")


class ProgressDocument(Document):
    """IoTDA's own counters of a task's subtasks (ShowBatchTask's `task_progress`), as read."""

    total: int
    processing: int
    success: int
    fail: int
    waitting: int
    fail_wait_retry: int
    stopped: int
    removed: int


class OperationDocument(Document):
    """An operation's rollup on its track: counters kept with every delivery, O(1) to read.

    A rollout is an OceanConnect operation (its devices push their states) or an IoTDA batch
    task (`platform` "iotda": operation_id is the task_id, its members the task's subtasks as
    the tracker reads them through IoTDA's API); both are listed and read the same way."""

    operation_id: str = Field(description="OceanConnect's operationId, or IoTDA's task_id")
    track: Track
    platform: Platform = Field(
        description="how a rollout's platform is shown: iotda when a batch task by this id is "
        "known (GET /v1/tasks/{operation_id}), else oceanconnect"
    )
    app_id: str
    devices: int = Field(description="every device that reported under the operation")
    states: dict[str, int] = Field(
        description="members by current state here (none: omitted): OceanConnect's states "
        "(idle, downloading, downloaded, updating), or IoTDA's subtask statuses as it spells "
        "them (Waitting, Processing, Success, Fail, FailWaitRetry, Stopped, Removed)"
    )
    results: dict[str, int] = Field(
        description="members by last result here: SUCCESS, FAIL (IoTDA: Success, Fail)"
    )
    errors: list[ErrorGroupDocument] = Field(
        description="FAIL results by error, top 20 (IoTDA: by error_code, with error_msg as "
        "result_desc)"
    )
    target_versions: dict[str, int] = Field(description="members by their result's target")
    first_seen_at: datetime
    last_activity_at: datetime
    stuck: int | None = Field(
        default=None,
        description="with ?stuck_for=SECONDS: OceanConnect: devices whose current operation "
        "this is, in a state other than idle for longer than that, with no result yet (GET "
        "/v1/devices?operation_id=&stuck_for= lists them); IoTDA: members in Waitting, "
        "Processing or FailWaitRetry for longer than that (GET "
        "/v1/operations/{operation_id}/devices?stuck_for= lists them); null otherwise",
    )
    task_status: TaskStatus | None = Field(
        description="iotda: the task's status (GET /v1/tasks/{operation_id}); null for oceanconnect"
    )
    task_progress: ProgressDocument | None = Field(
        description="iotda: the platform's own counters of the task's subtasks, as last read "
        "(beside the members' in devices, states and results); null for oceanconnect, or "
        "before the platform's counters were read"
    )
    progress_at: datetime | None = Field(description="when task_progress was read")
    progress_disagrees: bool | None = Field(
        description="true: task_progress and the members' counts differ (total and devices, "
        "or any status); false: they agree; null when there is no task_progress to compare"
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
    """A device's part in an operation: its state and last result there (it may have moved on).
    In an IoTDA task: its subtask's status, and Success or Fail as its result."""

    operation_id: str
    track: Track
    device_id: str
    app_id: str
    state: UpgradeState | SubtaskStatus | None = Field(
        description="OceanConnect's state, or the IoTDA subtask's status"
    )
    result: Result | None
    error_code: str | None
    result_desc: str | None
    target_version: str | None
    current_version: str | None
    first_seen_at: datetime
    last_position: int
    updated_at: datetime
    state_since: datetime | None = Field(
        description="IoTDA: when it entered its status (how long it has been stuck); null for "
        "OceanConnect"
    )


class TaskDocument(Document):
    """A batch task, as IoTDA's pushes and the tracker's reads of IoTDA's API told it."""

    task_id: str
    app_id: str
    task_type: TaskType
    status: TaskStatus
    status_desc: str | None
    event_time: PlatformTime = Field(
        description="the platform's time of the status; a status only a read of the API saw: "
        "when it was seen"
    )
    request_id: str | None
    last_position: int
    updated_at: datetime
    progress: ProgressDocument | None = Field(
        description="the platform's own counters of the subtasks, as last read through its "
        "API; null before any read (its members: GET /v1/operations/{task_id})"
    )
    progress_at: datetime | None = Field(description="when progress was read")
    pushed: StatusList = Field(description="the statuses a push delivered")
    observed: StatusList = Field(description="the statuses a read of IoTDA's API saw")

    @computed_field(  # type: ignore[prop-decorator] # pydantic's documented usage
        description="statuses seen by a read and never pushed: a lost push, made visible"
    )
    @property
    def unpushed(self) -> list[TaskStatus]:
        return [s for s in self.observed if s not in self.pushed]


class _TaskTransition(Document):
    position: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    valid: bool
    applied: bool = Field(description="false: the event arrived late and did not change status")
    event_time: PlatformTime = Field(
        description="the platform's time; source reconciliation: when the read saw it"
    )
    request_id: str | None
    received_at: datetime


SOURCE = "who told it: push (the platform's notification) or reconciliation (a read of IoTDA's API)"


class TaskTransitionDocument(_TaskTransition):
    source: Source = Field(description=SOURCE)


class FeedDeviceTransition(DeviceTransitionDocument):
    """`device_transition` and `device_result` events of GET /v1/stream."""

    device_id: str


class FeedTaskTransition(_TaskTransition):
    """`task_transition` events of GET /v1/stream."""

    task_id: str
    source: Source = Field(description=SOURCE)


class FeedAlert(Document):
    """`alert` events of GET /v1/stream: a guard's alert on a rollout fired or resolved."""

    position: int
    id: str = Field(description="the change's id, as its webhook carried it")
    guard: str
    operation_id: str
    track: Track
    app_id: str
    state: Literal["firing", "resolved"]
    value: float
    threshold: float
    at: datetime = Field(description="when the condition was read to have crossed")
    received_at: datetime


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


class StopDocument(Document):
    outcome: StopOutcome = Field(
        description="stopping: IoTDA took the StopBatchTask; refused: it said no; unconfirmed: "
        "IoTDA's own counters of the task did not show the condition, so it was not stopped; "
        "failed: no answer in time, or no IoTDA credentials here"
    )
    detail: str | None = Field(description="IoTDA's answer or error, as text")
    at: datetime


class AlertDocument(Document):
    """One guard on one rollout: it fired when its condition became true, and resolved when it
    stopped being true. Changes are numbered: the webhook of the n-th has id
    `guard:operation_id:track:n`."""

    id: str = Field(description="the alert's latest change's id (what its webhook carried)")
    guard: str
    operation_id: str
    track: Track
    app_id: str
    platform: Platform
    state: Literal["firing", "resolved"]
    value: float = Field(description="the condition's reading at the latest change")
    threshold: float
    fired_at: datetime
    resolved_at: datetime | None
    changes: int = Field(description="how many times it fired or resolved")
    new_codes: list[str] = Field(description="new_error_code: the codes that fired it")
    stop: StopDocument | None = Field(description="StopBatchTask's outcome for this firing")

    @classmethod
    def of(cls, source: object) -> Self:
        alert: Any = source
        return cls(
            id=f"{alert.guard}:{alert.operation_id}:{alert.track}:{alert.changes}",
            guard=alert.guard,
            operation_id=alert.operation_id,
            track=alert.track,
            app_id=alert.app_id,
            platform=alert.platform,
            state=alert.state,
            value=alert.value,
            threshold=alert.threshold,
            fired_at=alert.fired_at,
            resolved_at=alert.resolved_at,
            changes=alert.changes,
            new_codes=sorted(alert.new_codes),
            stop=None if alert.stop is None else StopDocument.of(alert.stop),
        )


def origin(url: str) -> str:
    """scheme://host[:port]/… of a URL: where it goes, without what its path may carry."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


class WebhookDocument(Document):
    url: str = Field(
        description="as written, to the admin token; to the read token only its origin "
        "(scheme://host[:port]/…): a webhook URL often carries a credential"
    )
    secret_set: Literal[True] = Field(description="the secret is kept, and never shown again")


class GuardDocument(Document):
    """A guard as written, without its webhook's secret."""

    name: str
    scope: dict[str, str] = Field(description="app_id, track, platform, operation_id: all given")
    when: dict[str, Any] = Field(description="its one condition")
    webhook: WebhookDocument | None
    stop_task: bool = Field(description="also stop an IoTDA task whose alert fires")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, source: object, *, whole_url: bool = True) -> Self:
        guard: Any = source
        url = guard.webhook_url
        return cls(
            name=guard.name,
            scope=guard.scope.model_dump(exclude_none=True),
            when=guard.when.model_dump(),
            webhook=None
            if url is None
            else WebhookDocument(url=url if whole_url else origin(url), secret_set=True),
            stop_task=guard.stop_task,
            created_at=guard.created_at,
            updated_at=guard.updated_at,
        )


class DeadLetterDocument(Document):
    """A webhook delivery that was given up on; POST .../retry sends it again."""

    id: str = Field(description="the alert change's id")
    guard: str = Field(alias="secret_ref", serialization_alias="guard")
    url: str = Field(description="whole to the admin token, its origin to the read token")
    created_at: datetime
    attempts: int
    last_error: str | None
    died_at: datetime
    model_config = ConfigDict(
        frozen=True, extra="ignore", from_attributes=True, populate_by_name=True
    )
