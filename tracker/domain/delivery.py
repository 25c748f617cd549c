"""From the bytes of one delivery to the event we append, or to a precise refusal.

Pure: the HTTP handler and `tracker import` both call `decode`, so both accept and refuse exactly
the same bodies for exactly the same reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from tracker.domain.notifications import Notification
from tracker.domain.registry import BY_NAME, NOTIFICATION_TYPES, ProjectedStream, recognised

StreamType = Literal[ProjectedStream, "unrecognised"]
M = TypeVar("M", bound=BaseModel)
MAX_LABEL = 200  # unrecognised type labels come from the sender: keep them bounded


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A delivery that passed validation and is ready to append to the log."""

    stream_type: StreamType
    stream_id: str
    event_type: str
    raw: bytes
    occurred_at: datetime | None
    notification: Notification | None  # None when the type is not one we project
    readmitted_from: int | None = None  # the `rejected` row it was readmitted from


@dataclass(frozen=True, slots=True)
class Refusal(Exception):  # noqa: N818 - a domain outcome, not a programming error
    """Why a delivery cannot be accepted: `malformed` (not a JSON object) or `invalid` (schema)."""

    kind: Literal["malformed", "invalid"]
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message


def decode(raw: bytes) -> NewEvent:
    """Parse, recognise by shape (registry.py) and validate one delivery; raise `Refusal` if it
    can't be kept."""
    document = _parse_object(raw)
    kind = recognised(document)
    if kind is None:
        stream_hint, label = _stream_hint(document), _label(document)
        return NewEvent("unrecognised", stream_hint, label, raw, None, None)
    notification = _validate(kind.model, document)
    _refuse_inadmissible(kind.inadmissible(notification))
    projected = notification if kind.projected(notification) else None
    stream_id, occurred_at = kind.stream_id(notification), kind.occurred_at(notification)
    return NewEvent(kind.stream, stream_id, kind.name, raw, occurred_at, projected)


def decode_written(event_type: str, raw: bytes) -> NewEvent:
    """An event the tracker wrote itself (a type without a shape: the reconciler's), as an
    export carries it back to `tracker import`; any other type goes through `decode`.

    No delivery can be taken for one of these: they are recognised by the name the log gave
    them, never by shape, so a platform, or whoever holds the ingest token, cannot forge one.
    """
    kind = BY_NAME.get(event_type)
    if kind is None or kind.shape is not None:
        return decode(raw)
    _parse_object(raw)
    try:
        notification = kind.model.model_validate_json(raw)
    except ValidationError as error:
        raise _schema_refusal(error) from None
    projected = notification if kind.projected(notification) else None
    return NewEvent(kind.stream, kind.stream_id(notification), kind.name, raw, None, projected)


def decode_logged(event_type: str, raw: bytes) -> Notification | None:
    """The notification of an event already in the log (replay's hot path).

    The log says which model the body passed at ingest, so pydantic can parse and validate in
    one step, with the same models `decode` uses. Anything that does not pass that way goes
    through `decode` itself, whose answer is the authority.
    """
    validator = _VALIDATORS.get(event_type)
    if validator is not None:
        try:
            notification: Notification = validator.validate_json(raw)
        except ValidationError:
            pass
        else:
            return notification if BY_NAME[event_type].projected(notification) else None
    return decode(raw).notification


class _Validator(Protocol):
    def validate_json(self, data: bytes) -> Any: ...  # noqa: ANN401 - the model's instance


# The models' own validators, called directly: replay decodes millions.
_VALIDATORS: dict[str, _Validator] = {
    kind.name: kind.model.__pydantic_validator__ for kind in NOTIFICATION_TYPES
}


def _parse_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise Refusal("malformed", "empty_body", "the body is empty; expected a JSON object")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Refusal(
            "malformed",
            "invalid_utf8",
            f"the body is not valid UTF-8 (byte {error.start}); JSON must be UTF-8",
        ) from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise Refusal("malformed", "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise Refusal(
            "malformed", "not_an_object", f"the body is JSON but not an object (got {kind})"
        )
    return document


def _validate(model: type[M], document: dict[str, Any]) -> M:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        raise _schema_refusal(error) from None


def _schema_refusal(error: ValidationError) -> Refusal:
    """A 422 that names every offending field by its dotted path, e.g. notify_data.body.status."""
    details = [
        {
            "field": ".".join(str(part) for part in problem["loc"]),
            "problem": problem["msg"],
            "type": problem["type"],
        }
        for problem in error.errors(include_url=False, include_input=False)
    ]
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    return Refusal("invalid", "schema_violation", summary, details)


def _refuse_inadmissible(found: Mapping[str, str]) -> None:
    """A 422 naming each field that would not be stored exactly (e.g. a time, instants.py)."""
    if not found:
        return
    details = [
        {"field": name, "problem": problem, "type": "time_out_of_range"}
        for name, problem in found.items()
    ]
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details)
    raise Refusal("invalid", "schema_violation", summary, details)


def _label(document: dict[str, Any]) -> str:
    """A readable type for a notification we do not project: notifyType, or resource.event."""
    notify_type = document.get("notifyType")
    if isinstance(notify_type, str) and _bounded(notify_type):
        return _bounded(notify_type)
    resource, event = document.get("resource"), document.get("event")
    if isinstance(resource, str) and isinstance(event, str):
        return _bounded(f"{resource}.{event}")
    return "unknown"


def _stream_hint(document: dict[str, Any]) -> str:
    device_id = document.get("deviceId")
    return _bounded(device_id) if isinstance(device_id, str) else ""


def _bounded(text: str) -> str:
    """Sender-chosen text for a label column: short, and without U+0000 (text cannot hold it)."""
    return text.replace("\x00", "")[:MAX_LABEL]
