"""decode(): every body the platforms send is recognised; everything else is refused precisely."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from tracker.domain.delivery import Refusal, decode, decode_logged
from tracker.domain.notifications import (
    BatchTaskUpdated,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
)


@pytest.mark.parametrize(
    ("stem", "model", "stream_type", "stream_id", "event_type"),
    [
        (
            "oceanconnect-swUpgradeStateChangeNotify",
            SwUpgradeStateChanged,
            "device",
            "d-7f3a9c01",
            "swUpgradeStateChangeNotify",
        ),
        (
            "oceanconnect-swUpgradeResultNotify",
            SwUpgradeResult,
            "device",
            "d-7f3a9c01",
            "swUpgradeResultNotify",
        ),
        (
            "oceanconnect-fwUpgradeStateChangeNotify",
            FwUpgradeStateChanged,
            "device",
            "d-7f3a9c01",
            "fwUpgradeStateChangeNotify",
        ),
        (
            "oceanconnect-fwUpgradeResultNotify",
            FwUpgradeResult,
            "device",
            "d-7f3a9c01",
            "fwUpgradeResultNotify",
        ),
        (
            "iotda-batchtask-update",
            BatchTaskUpdated,
            "task",
            "1a7ffc5c-d89c-44dd-8265",
            "batchtask.update",
        ),
    ],
)
def test_each_platform_example_is_recognised(
    examples: dict[str, bytes],
    stem: str,
    model: type[BaseModel],
    stream_type: str,
    stream_id: str,
    event_type: str,
) -> None:
    event = decode(examples[stem])
    assert isinstance(event.notification, model)
    assert (event.stream_type, event.stream_id, event.event_type) == (
        stream_type,
        stream_id,
        event_type,
    )
    assert event.raw == examples[stem]


# SHA-256 of each body in ../shared/examples, the platform's documents (2026-12-06): the copies
# under tests/examples must be those bytes, on any machine, with or without ../shared beside.
SHARED_EXAMPLES = {
    "iotda-batchtask-update": "415d2398d53f22ae8ef0f255c281047a21a5ab2a01b1109986367d631bcf3297",
    "oceanconnect-fwUpgradeResultNotify": (
        "da2b25da5fd8e4c2b64f576ab66b4a01b4fb89d1796aca0ca7814a4548c647d3"
    ),
    "oceanconnect-fwUpgradeStateChangeNotify": (
        "75436c34a4bc78531ec9517bcd7bd37e477ae8c11826929184105549af0d93eb"
    ),
    "oceanconnect-swUpgradeResultNotify": (
        "0b9d38878ad8fcadc3ab0290676f8991500910e0fd3990b2ea8a7e7d34d28cb3"
    ),
    "oceanconnect-swUpgradeStateChangeNotify": (
        "b8a7f73ae532701254eedc0f955721bd29b4380fed58d2f8afcb6285d3335270"
    ),
}


def test_examples_are_the_shared_ones(examples: dict[str, bytes]) -> None:
    assert {name: hashlib.sha256(body).hexdigest() for name, body in examples.items()} == (
        SHARED_EXAMPLES
    )


def test_batch_task_time_prefers_milliseconds(examples: dict[str, bytes]) -> None:
    event = decode(examples["iotda-batchtask-update"])
    assert event.occurred_at == datetime(2015, 12, 12, 12, 12, 12, tzinfo=UTC)
    body = json.loads(examples["iotda-batchtask-update"])
    body["event_time_ms"] = "2015-12-12T12:12:12.345Z"
    assert decode(json.dumps(body).encode()).occurred_at == datetime(
        2015, 12, 12, 12, 12, 12, 345000, tzinfo=UTC
    )
    del body["event_time_ms"], body["request_id"]
    assert decode(json.dumps(body).encode()).occurred_at == datetime(
        2015, 12, 12, 12, 12, 12, tzinfo=UTC
    )


def test_device_notifications_carry_no_time(examples: dict[str, bytes]) -> None:
    assert decode(examples["oceanconnect-swUpgradeStateChangeNotify"]).occurred_at is None


@pytest.mark.parametrize("upgrade_time", ["183", 183])
def test_upgrade_time_may_be_a_string_or_a_long(
    examples: dict[str, bytes], upgrade_time: str | int
) -> None:
    body = json.loads(examples["oceanconnect-swUpgradeResultNotify"])
    body["upgradeTime"] = upgrade_time
    notification = decode(json.dumps(body).encode()).notification
    assert isinstance(notification, SwUpgradeResult)
    assert notification.upgradeTime == upgrade_time


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty_body"),
        (b"  \n", "empty_body"),
        (b"\xff\xfe{}", "invalid_utf8"),
        (b'{"a": "\xc3\x28"}', "invalid_utf8"),
        (b"{", "invalid_json"),
        (b'{"a": NaN}', "invalid_json"),
        (b'{"a": "\\ud800"}', "invalid_json"),
        (b'\xef\xbb\xbf{"a": 1}', "invalid_json"),
        (b"{} {}", "invalid_json"),
        (b"[" * 2000 + b"]" * 2000, "invalid_json"),
        (b"[]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
    ],
)
def test_malformed_bodies_are_refused_with_a_specific_code(raw: bytes, code: str) -> None:
    with pytest.raises(Refusal) as refused:
        decode(raw)
    assert (refused.value.kind, refused.value.code) == ("malformed", code)
    assert refused.value.message


def _changed(example: bytes, **changes: object) -> bytes:
    body = json.loads(example)
    for key, value in changes.items():
        if value is ...:
            del body[key]
        else:
            body[key] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("stem", "changes", "field"),
    [
        ("oceanconnect-swUpgradeStateChangeNotify", {"swUpgradeState": "flying"}, "swUpgradeState"),
        ("oceanconnect-swUpgradeStateChangeNotify", {"deviceId": ...}, "deviceId"),
        ("oceanconnect-swUpgradeStateChangeNotify", {"deviceId": 17}, "deviceId"),
        ("oceanconnect-swUpgradeStateChangeNotify", {"deviceId": ""}, "deviceId"),
        ("oceanconnect-swUpgradeStateChangeNotify", {"operationId": None}, "operationId"),
        ("oceanconnect-fwUpgradeStateChangeNotify", {"step": 1}, "step"),
        ("oceanconnect-fwUpgradeStateChangeNotify", {"step": "4"}, "step"),
        ("oceanconnect-fwUpgradeResultNotify", {"status": "success"}, "status"),
        ("oceanconnect-swUpgradeResultNotify", {"swUpgradeResult": ...}, "swUpgradeResult"),
        ("oceanconnect-swUpgradeResultNotify", {"swUpgradeResult": True}, "swUpgradeResult"),
        ("oceanconnect-fwUpgradeResultNotify", {"status": None}, "status"),
        ("iotda-batchtask-update", {"event_time": "2015-12-12 12:12:12"}, "event_time"),
        ("iotda-batchtask-update", {"event_time": "20151312T121212Z"}, "event_time"),
        ("iotda-batchtask-update", {"event_time_ms": "2015-12-12T12:12:12.000"}, "event_time_ms"),
        ("iotda-batchtask-update", {"event_time_ms": "2015-12-12T25:12:12.000Z"}, "event_time_ms"),
        ("iotda-batchtask-update", {"notify_data": ...}, "notify_data"),
    ],
)
def test_schema_violations_name_the_field(
    examples: dict[str, bytes], stem: str, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(Refusal) as refused:
        decode(_changed(examples[stem], **changes))
    assert refused.value.kind == "invalid"
    assert {d["field"] for d in refused.value.details} == {field}
    assert field in refused.value.message


def test_an_empty_task_body_names_each_strict_field_it_lacks(examples: dict[str, bytes]) -> None:
    with pytest.raises(Refusal) as refused:
        decode(_changed(examples["iotda-batchtask-update"], notify_data={"body": {}}))
    assert refused.value.kind == "invalid"
    strict = {f"notify_data.body.{name}" for name in ("app_id", "task_id", "task_type", "status")}
    assert {d["field"] for d in refused.value.details} == strict
    assert all(field in refused.value.message for field in strict)


def test_batch_task_status_uses_the_platform_spelling(examples: dict[str, bytes]) -> None:
    body = json.loads(examples["iotda-batchtask-update"])
    body["notify_data"]["body"]["status"] = "Waiting"
    with pytest.raises(Refusal, match=r"notify_data\.body\.status"):
        decode(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("body", "label", "stream_id"),
    [
        (
            {"notifyType": "deviceDataChanged", "deviceId": "d-1", "service": {}},
            "deviceDataChanged",
            "d-1",
        ),
        ({"resource": "device", "event": "update", "notify_data": {}}, "device.update", ""),
        ({"resource": "batchtask", "event": "create"}, "batchtask.create", ""),
        ({"resource": "batchtask"}, "unknown", ""),  # a resource without its event
        ({"event": "update", "resource": 7}, "unknown", ""),
        ({"notifyType": 5}, "unknown", ""),
        ({}, "unknown", ""),
        ({"notifyType": "x" * 1000}, "x" * 200, ""),
    ],
)
def test_other_objects_are_accepted_as_unrecognised(
    body: dict[str, object], label: str, stream_id: str
) -> None:
    event = decode(json.dumps(body).encode())
    assert (event.stream_type, event.event_type, event.stream_id) == (
        "unrecognised",
        label,
        stream_id,
    )
    assert event.notification is None


def test_extra_fields_are_tolerated_and_kept_in_raw(examples: dict[str, bytes]) -> None:
    raw = _changed(examples["oceanconnect-swUpgradeStateChangeNotify"], newField={"x": 1})
    event = decode(raw)
    assert event.notification is not None
    assert event.raw == raw


def test_nul_escapes_are_kept_in_raw() -> None:
    raw = b'{"notifyType": "odd\\u0000type", "k\\u0000": ["\\u0000"]}'
    event = decode(raw)
    assert event.raw == raw


@pytest.mark.parametrize("field", ["deviceId", "operationId", "swUpgradeState"])
def test_nul_in_a_projected_text_is_a_schema_violation(
    examples: dict[str, bytes], field: str
) -> None:
    body = json.loads(examples["oceanconnect-swUpgradeStateChangeNotify"])
    body[field] = body[field] + "\x00"
    with pytest.raises(Refusal) as refused:
        decode(json.dumps(body).encode())
    assert {d["field"] for d in refused.value.details} == {field}


def test_nul_in_an_unrecognised_label_is_dropped() -> None:
    event = decode(b'{"notifyType": "a\\u0000b", "deviceId": "\\u0000"}')
    assert (event.event_type, event.stream_id) == ("ab", "")


def test_the_log_decodes_as_ingestion_did(examples: dict[str, bytes]) -> None:
    """Replay's fast path gives what `decode` gives, for every type, and None where decode
    would project nothing."""
    for raw in examples.values():
        event = decode(raw)
        assert decode_logged(event.event_type, raw) == event.notification
    other = b'{"notifyType": "deviceDataChanged", "deviceId": "d-1"}'
    assert decode_logged(decode(other).event_type, other) is None
    body = json.loads(examples["iotda-batchtask-update"])
    body["notify_data"]["body"]["task_type"] = "createDevices"  # logged, not projected
    assert decode_logged("batchtask.update", json.dumps(body).encode()) is None
