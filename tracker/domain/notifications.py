"""The platforms' notification bodies, with their field names and enum values exactly as sent.

OceanConnect (camelCase) describes one device; IoTDA (snake_case) describes a batch task.

Two tiers of fields. The platforms never retry a 4xx, so a refusal loses the delivery's effect:
- **strict**: what the projections need (the type, the stream's ids, the state or step, the
  result or status, the task type, the platform's time). Missing, null or of the wrong type: 422.
  A number where the platform sends a string is a violation, not something to coerce.
- **descriptive** (`Descriptive`, `UpgradeTime`): texts shown to people and versions compared
  for anomalies. Missing, null or unusable (an object, a list, a boolean) they are kept as null;
  a number is kept as its text (`errorCode: 0` is "0"); texts are cut at MAX_TEXT characters,
  codes and versions at MAX_CODE. The raw body in the log keeps them as sent.
Unknown extra fields are ignored here (the raw body keeps them anyway).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from tracker.domain.platform_time import PlatformTime, admissible, parse_platform_time

# PostgreSQL text cannot hold U+0000: identifiers and texts that reach the projections refuse it.
NO_NUL = r"^[^\x00]*$"
MAX_TEXT = 4096
# Codes and versions are keys of the rollups' indexes (operation_errors, operation_versions),
# whose entries PostgreSQL bounds at 2,704 bytes: at most this many characters of them are kept.
MAX_CODE = 128
MAX_ID = 256
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=NO_NUL)]

# Each set of values is declared once, as a Literal: the type checker holds every use of a value
# to it (and `match` on it to all of its values), pydantic validates and documents it, and the
# tuple beside it (`get_args`, in the declared order) is what code iterates over; the SQL that
# spells them is generated from those tuples or checked against them (tests/integration/
# test_enum_predicates.py). Literals, not enums: a value stays the plain `str` the platform
# sends, which strict validation accepts as it is, and which the rows, marks and digests stored
# from earlier versions hold.
Track = Literal["software", "firmware"]  # which upgrade state machine a notification drives
TRACKS: tuple[Track, ...] = get_args(Track)
UpgradeState = Literal["idle", "downloading", "downloaded", "updating"]
UPGRADE_STATES: tuple[UpgradeState, ...] = get_args(UpgradeState)
Result = Literal["SUCCESS", "FAIL"]
RESULTS: tuple[Result, ...] = get_args(Result)


def _text(value: object) -> str | None:
    """A descriptive value as text: as sent, without U+0000 and at most MAX_TEXT characters."""
    if isinstance(value, str):
        return value.replace("\x00", "")[:MAX_TEXT]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None  # missing, null, or not a text at all (object, list, boolean)


def _code(value: object) -> str | None:
    """A code or a version: a descriptive text of at most MAX_CODE characters."""
    text = _text(value)
    return None if text is None else text[:MAX_CODE]


def _text_or_whole_number(value: object) -> str | int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(value)


Descriptive = Annotated[
    str | None,
    BeforeValidator(_text),
    WithJsonSchema({"type": ["string", "number", "null"], "description": "kept when usable"}),
]
Code = Annotated[
    str | None,
    BeforeValidator(_code),
    WithJsonSchema({"type": ["string", "number", "null"], "description": "kept when usable"}),
]
# `upgradeTime` is documented as a String on some of the platform's pages and a Long on others.
UpgradeTime = Annotated[
    str | int | None,
    BeforeValidator(_text_or_whole_number),
    WithJsonSchema({"type": ["string", "integer", "null"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _DeviceNotification(_Strict):
    deviceId: Id  # noqa: N815 - the platform's field name is the contract
    appId: Id  # noqa: N815
    operationId: Id  # noqa: N815
    subOperationId: Id  # noqa: N815


class SwUpgradeStateChanged(_DeviceNotification):
    track: ClassVar[Track] = "software"
    notifyType: Literal["swUpgradeStateChangeNotify"]  # noqa: N815
    swUpgradeState: UpgradeState  # noqa: N815


class _UpgradeResult(_DeviceNotification):
    curVersion: Code = None  # noqa: N815
    targetVersion: Code = None  # noqa: N815
    sourceVersion: Code = None  # noqa: N815
    upgradeTime: UpgradeTime = None  # noqa: N815


class SwUpgradeResult(_UpgradeResult):
    track: ClassVar[Track] = "software"
    notifyType: Literal["swUpgradeResultNotify"]  # noqa: N815
    swUpgradeResult: Result  # noqa: N815
    resultDesc: Descriptive = None  # noqa: N815
    errorCode: Code = None  # noqa: N815
    description: Descriptive = None


class FwUpgradeStateChanged(_DeviceNotification):
    track: ClassVar[Track] = "firmware"
    notifyType: Literal["fwUpgradeStateChangeNotify"]  # noqa: N815
    step: Literal["0", "1", "2", "3"]  # idle, downloading, downloaded, updating
    stepDesc: Descriptive = None  # noqa: N815 - should name the step's state; see device.py


class FwUpgradeResult(_UpgradeResult):
    track: ClassVar[Track] = "firmware"
    notifyType: Literal["fwUpgradeResultNotify"]  # noqa: N815
    status: Result
    statusDesc: Descriptive = None  # noqa: N815


StateReport = SwUpgradeStateChanged | FwUpgradeStateChanged
ResultReport = SwUpgradeResult | FwUpgradeResult
DeviceNotification = StateReport | ResultReport

# IoTDA's batch task statuses. The push notification's page ("Push a Batch Task Status Change
# Notification", iot_06_v5_01204) lists six; the batch task model of the API and its SDKs adds two
# (huaweicloud-sdk-python-v3, huaweicloudsdkiotda/v5/model/task.py, `status`: "Success|Fail|
# Processing|PartialSuccess|Stopped|Waitting|Initializing|Stopping ... Initializing: 初始化中 ...
# Stopping 停止中"), which StopBatchTask puts a task through. "Waitting" is the platform's spelling.
TaskStatus = Literal[
    "Initializing",
    "Waitting",
    "Processing",
    "Success",
    "PartialSuccess",
    "Fail",
    "Stopped",
    "Stopping",
]
TASK_STATUSES: tuple[TaskStatus, ...] = get_args(TaskStatus)
TaskType = Literal["firmwareUpgrade", "softwareUpgrade"]  # the batch tasks we project
TASK_TYPES: tuple[TaskType, ...] = get_args(TaskType)
UPGRADE_TASKS: frozenset[str] = frozenset(TASK_TYPES)


class BatchTaskUpdate(_Strict):
    app_id: Id
    task_id: Id
    # Any batch task type is logged; only the two upgrade types are projected (delivery.py).
    task_type: Id
    status: TaskStatus
    status_desc: Descriptive = None


class BatchTaskNotifyData(_Strict):
    body: BatchTaskUpdate


class BatchTaskUpdated(_Strict):
    """IoTDA's batch task status change (resource "batchtask", event "update")."""

    resource: Literal["batchtask"]
    event: Literal["update"]
    # Validated in this order: `event_time` may be left out only if `event_time_ms` says it.
    event_time_ms: str | None = None  # yyyy-MM-dd'T'HH:mm:ss.SSS'Z'
    event_time: str | None = Field(default=None, validate_default=True)  # yyyyMMdd'T'HHmmss'Z'
    request_id: Descriptive = None  # retry detection: a number is kept as its text
    notify_data: BatchTaskNotifyData

    @field_validator("event_time_ms")
    @classmethod
    def _is_a_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_platform_time(value)
        return value

    @field_validator("event_time")
    @classmethod
    def _is_a_time_or_said_to_the_ms(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The status is ordered by the platform's time: one of the two must say it.
        if value is not None:
            parse_platform_time(value)
        elif "event_time_ms" in info.data and info.data["event_time_ms"] is None:
            # (Absent from `info.data` when it was refused itself: that is the one error.)
            raise ValueError("event_time or event_time_ms is required (the platform's time)")
        return value

    def inadmissible_times(self) -> dict[str, str]:
        """The time fields a new delivery may not carry, and why (platform_time.admissible).

        The validators above read any time that converts to UTC, as replay must for events an
        older version logged; admitting a delivery asks this too (delivery.decode)."""
        found: dict[str, str] = {}
        for name, value in (("event_time_ms", self.event_time_ms), ("event_time", self.event_time)):
            if value is not None and (why := admissible(value)) is not None:
                found[name] = why
        return found

    @property
    def is_upgrade(self) -> bool:
        return self.notify_data.body.task_type in UPGRADE_TASKS

    def occurred(self) -> PlatformTime:
        """The platform's own time for the event: the millisecond field when present."""
        return parse_platform_time(self.event_time_ms or self.event_time or "")

    def occurred_at(self) -> datetime:
        return self.occurred().at


# What the tracker itself observes through IoTDA's API (tracker/iotda/): a task as ShowBatchTask
# returned it, and one device's part of it (a `task_details` entry). These are the SDK's models
# (huaweicloudsdkiotda/v5/model/task.py, task_progress.py, task_detail.py, error_info.py): their
# field names, and the subtask statuses as the API spells them ("Waitting" included).
SubtaskStatus = Literal[
    "Waitting", "Processing", "Success", "Fail", "FailWaitRetry", "Stopped", "Removed"
]
SUBTASK_STATUSES: tuple[SubtaskStatus, ...] = get_args(SubtaskStatus)
Count = Annotated[int, Field(ge=0)]


class TaskProgress(_Strict):
    """The platform's own counters of a task's subtasks (`task_progress`)."""

    total: Count = 0
    processing: Count = 0
    success: Count = 0
    fail: Count = 0
    waitting: Count = 0
    fail_wait_retry: Count = 0
    stopped: Count = 0
    removed: Count = 0


class ObservedTaskBody(_Strict):
    task_id: Id
    task_type: Id
    status: TaskStatus
    status_desc: Descriptive = None
    task_progress: TaskProgress | None = None
    create_time: Descriptive = None


class SubtaskError(_Strict):
    error_code: Code = None
    error_msg: Descriptive = None


class SubtaskDetail(_Strict):
    target: Id  # the device's id
    status: SubtaskStatus
    output: Descriptive = None
    error: SubtaskError | None = None


class _Observation(_Strict):
    """Written by the reconciler, never pushed: what it read, when, and with which request."""

    observed_at: datetime  # the tracker's clock when the answer arrived
    request: Descriptive = None  # the API call, as sent (no credentials)
    app_id: Id | None = None  # the task's application, where the tracker knows it


class BatchTaskObserved(_Observation):
    """A task read through ShowBatchTask whose status or progress the log did not yet say;
    `batchtask` is the answer's object, byte for byte, in the stored body."""

    batchtask: ObservedTaskBody

    @property
    def is_upgrade(self) -> bool:
        return self.batchtask.task_type in UPGRADE_TASKS


class SubtaskObserved(_Observation):
    """One device's subtask of an upgrade task, read through ShowBatchTask, whose status or
    error the log did not yet say; `detail` is its `task_details` entry, byte for byte."""

    task_id: Id
    task_type: TaskType
    detail: SubtaskDetail

    @property
    def track(self) -> Track:
        return "firmware" if self.task_type == "firmwareUpgrade" else "software"


Observation = BatchTaskObserved | SubtaskObserved

# Where a rollout runs: an OceanConnect operation (pushed per device), or an IoTDA batch task.
Platform = Literal["oceanconnect", "iotda"]
AlertState = Literal["firing", "resolved"]
EndReason = Literal["guard replaced", "guard deleted"]
GuardName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]


class AlertChanged(_Strict):
    """Written by the tracker when a guard's alert on a rollout fires or resolves
    (tracker/alerts/): what its webhook is told, byte for byte, and all the alert's row holds
    (domain/guards.py folds it), so replay rebuilds alerts from the log and never re-decides."""

    id: Annotated[str, Field(min_length=1)]  # unique per change: guard:operation:track:number
    guard: GuardName
    operation_id: Id
    track: Track
    app_id: Annotated[str, Field(max_length=MAX_ID)]  # '' when the rollout's app is unknown
    platform: Platform
    state: AlertState
    value: float
    threshold: float
    at: datetime  # when the condition was read to have crossed
    fired_at: datetime  # when this episode began (= `at` when firing)
    number: Annotated[int, Field(ge=1)]  # the alert's n-th change
    # `new_error_code` guards: the codes that fired it, and those no longer counted as new.
    new_codes: tuple[str, ...] = ()
    known_codes: tuple[str, ...] = ()
    # Resolved because its guard was replaced or deleted, not because the rollout recovered.
    reason: EndReason | None = None


# "unconfirmed": IoTDA's own counters of the task did not show the condition: not stopped.
StopOutcome = Literal["stopping", "refused", "unconfirmed", "failed"]


class AlertStopped(_Strict):
    """Written by the tracker with the result of a guard's StopBatchTask for the firing it
    answered (`number`): the platform took it, refused it, or could not be reached in time."""

    guard: GuardName
    operation_id: Id
    track: Track
    number: Annotated[int, Field(ge=1)]
    outcome: StopOutcome
    detail: Descriptive = None  # the platform's answer or error, as text
    at: datetime


AlertEvent = AlertChanged | AlertStopped

# Every model the projections fold: each has its entry in registry.py (a test holds the two to it).
Notification = DeviceNotification | BatchTaskUpdated | Observation | AlertEvent
