"""The platforms' notification bodies, with their field names and enum values exactly as sent.

OceanConnect (camelCase) describes one device; IoTDA (snake_case) describes a batch task.
Models are strict: a number where the platform sends a string is a schema violation, not something
to coerce. Unknown extra fields are ignored here (the raw body keeps them anyway).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, field_validator

# PostgreSQL text cannot hold U+0000: identifiers and texts that reach the projections refuse it.
NO_NUL = r"^[^\x00]*$"
Id = Annotated[str, Field(min_length=1, max_length=256, pattern=NO_NUL)]
Text = Annotated[str, Field(max_length=4096, pattern=NO_NUL)]
Track = Literal["software", "firmware"]  # which upgrade state machine a notification drives
UpgradeState = Literal["downloading", "downloaded", "updating", "idle"]
Result = Literal["SUCCESS", "FAIL"]


def _string_or_whole_number(value: object) -> str | int:
    if isinstance(value, str) and len(value) <= 4096 and "\x00" not in value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("must be a string or a whole number (the platform documents both)")


# `upgradeTime` is documented as a String on some of the platform's pages and a Long on others.
UpgradeTime = Annotated[
    str | int,
    PlainValidator(_string_or_whole_number),
    WithJsonSchema({"anyOf": [{"type": "string", "maxLength": 4096}, {"type": "integer"}]}),
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


class SwUpgradeResult(_DeviceNotification):
    track: ClassVar[Track] = "software"
    notifyType: Literal["swUpgradeResultNotify"]  # noqa: N815
    curVersion: Text  # noqa: N815
    targetVersion: Text  # noqa: N815
    sourceVersion: Text  # noqa: N815
    swUpgradeResult: Result  # noqa: N815
    upgradeTime: UpgradeTime  # noqa: N815
    resultDesc: Text  # noqa: N815
    errorCode: Text  # noqa: N815
    description: Text


class FwUpgradeStateChanged(_DeviceNotification):
    track: ClassVar[Track] = "firmware"
    notifyType: Literal["fwUpgradeStateChangeNotify"]  # noqa: N815
    step: Literal["0", "1", "2", "3"]  # idle, downloading, downloaded, updating
    stepDesc: UpgradeState  # noqa: N815


class FwUpgradeResult(_DeviceNotification):
    track: ClassVar[Track] = "firmware"
    notifyType: Literal["fwUpgradeResultNotify"]  # noqa: N815
    curVersion: Text  # noqa: N815
    targetVersion: Text  # noqa: N815
    sourceVersion: Text  # noqa: N815
    status: Result
    statusDesc: Text  # noqa: N815
    upgradeTime: UpgradeTime  # noqa: N815


DeviceNotification = (
    SwUpgradeStateChanged | SwUpgradeResult | FwUpgradeStateChanged | FwUpgradeResult
)

DEVICE_MODELS: dict[str, type[DeviceNotification]] = {
    "swUpgradeStateChangeNotify": SwUpgradeStateChanged,
    "swUpgradeResultNotify": SwUpgradeResult,
    "fwUpgradeStateChangeNotify": FwUpgradeStateChanged,
    "fwUpgradeResultNotify": FwUpgradeResult,
}

TaskStatus = Literal["Waitting", "Processing", "Success", "PartialSuccess", "Fail", "Stopped"]
TaskType = Literal["firmwareUpgrade", "softwareUpgrade"]


class BatchTaskUpdate(_Strict):
    app_id: Id
    task_id: Id
    task_type: TaskType
    status: TaskStatus  # "Waitting" is the platform's spelling
    status_desc: Text


class BatchTaskNotifyData(_Strict):
    body: BatchTaskUpdate


class BatchTaskUpdated(_Strict):
    """IoTDA's batch task status change (resource "batchtask", event "update")."""

    resource: Literal["batchtask"]
    event: Literal["update"]
    event_time: str  # yyyyMMdd'T'HHmmss'Z'
    event_time_ms: str | None = None  # yyyy-MM-dd'T'HH:mm:ss.SSS'Z'
    request_id: Annotated[str, Field(max_length=256, pattern=NO_NUL)] | None = None
    notify_data: BatchTaskNotifyData

    @field_validator("event_time")
    @classmethod
    def _event_time_is_a_time(cls, value: str) -> str:
        parse_event_time(value)
        return value

    @field_validator("event_time_ms")
    @classmethod
    def _event_time_ms_is_a_time(cls, value: str | None) -> str | None:
        if value is not None:
            parse_event_time_ms(value)
        return value

    def occurred_at(self) -> datetime:
        """The platform's own time for the event: the millisecond field when present."""
        if self.event_time_ms is not None:
            return parse_event_time_ms(self.event_time_ms)
        return parse_event_time(self.event_time)


_EVENT_TIME = re.compile(r"\d{8}T\d{6}Z")
_EVENT_TIME_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def parse_event_time(value: str) -> datetime:
    """IoTDA's `event_time`, yyyyMMdd'T'HHmmss'Z' (UTC)."""
    return _parse(value, _EVENT_TIME, "yyyyMMdd'T'HHmmss'Z', e.g. 20151212T121212Z")


def parse_event_time_ms(value: str) -> datetime:
    """IoTDA's `event_time_ms`, yyyy-MM-dd'T'HH:mm:ss.SSS'Z' (UTC)."""
    return _parse(
        value,
        _EVENT_TIME_MS,
        "yyyy-MM-dd'T'HH:mm:ss.SSS'Z', e.g. 2015-12-12T12:12:12.000Z",
    )


def _parse(value: str, shape: re.Pattern[str], shown: str) -> datetime:
    """The shape is checked first; then ISO 8601 parsing (both are ISO forms, ending Z=UTC)
    checks the calendar, about 50 times faster than strptime."""
    if shape.fullmatch(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"must be a UTC time formatted {shown}")


Notification = DeviceNotification | BatchTaskUpdated
