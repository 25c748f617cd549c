"""Two tiers of fields: what decode() refuses, and what it keeps as best it can.

The platforms never retry a delivery answered with a 4xx, so a refusal loses the delivery's
effect for good. Only the fields the projections need are **strict** (missing, null or of the
wrong type: refused, naming the field); the **descriptive** ones, texts shown to people and
versions, are accepted however they come: missing, null or unusable as null, a number as its text.

The matrix below is generated from one table of (example, field, tier), and checked against the
models, so a field added to a model without a tier here fails `test_the_table_covers_every_field`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from tests.conftest import EXAMPLES
from tracker.domain.delivery import Refusal, decode, decode_logged
from tracker.domain.notifications import (
    MAX_CODE,
    MAX_TEXT,
    BatchTaskUpdated,
    FwUpgradeResult,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
)
from tracker.domain.platform_time import PlatformTime

SW_STATE = "oceanconnect-swUpgradeStateChangeNotify"
SW_RESULT = "oceanconnect-swUpgradeResultNotify"
FW_STATE = "oceanconnect-fwUpgradeStateChangeNotify"
FW_RESULT = "oceanconnect-fwUpgradeResultNotify"
TASK = "iotda-batchtask-update"
OCEANCONNECT = (SW_STATE, SW_RESULT, FW_STATE, FW_RESULT)
MODELS: dict[str, type[BaseModel]] = {
    SW_STATE: SwUpgradeStateChanged,
    SW_RESULT: SwUpgradeResult,
    FW_STATE: FwUpgradeStateChanged,
    FW_RESULT: FwUpgradeResult,
    TASK: BatchTaskUpdated,
}
BODIES: dict[str, dict[str, Any]] = {
    stem: json.loads((EXAMPLES / f"{stem}.json").read_bytes()) for stem in MODELS
}

STRICT = "strict"  # a text the projections need: refused unless a (valid) string
STRICT_OBJECT = "strict-object"  # an object holding strict fields: refused unless an object
DESCRIPTIVE = "descriptive"  # a text kept as best it can be
CODE = "code"  # descriptive, and a key of a rollup's index: kept shorter
UPGRADE_TIME = "upgrade-time"  # descriptive, but a whole number stays a number

DEVICE_IDS = ("deviceId", "appId", "operationId", "subOperationId")
RESULT_DESCRIPTIONS = ("curVersion", "targetVersion", "sourceVersion")
FIELDS = [
    *[(stem, field, STRICT) for stem in OCEANCONNECT for field in DEVICE_IDS],
    (SW_STATE, "swUpgradeState", STRICT),
    (SW_RESULT, "swUpgradeResult", STRICT),
    *[(SW_RESULT, field, CODE) for field in RESULT_DESCRIPTIONS],
    (SW_RESULT, "resultDesc", DESCRIPTIVE),
    (SW_RESULT, "errorCode", CODE),
    (SW_RESULT, "description", DESCRIPTIVE),
    (SW_RESULT, "upgradeTime", UPGRADE_TIME),
    (FW_STATE, "step", STRICT),
    (FW_STATE, "stepDesc", DESCRIPTIVE),
    (FW_RESULT, "status", STRICT),
    *[(FW_RESULT, field, CODE) for field in RESULT_DESCRIPTIONS],
    (FW_RESULT, "statusDesc", DESCRIPTIVE),
    (FW_RESULT, "upgradeTime", UPGRADE_TIME),
    (TASK, "notify_data", STRICT_OBJECT),
    (TASK, "notify_data.body", STRICT_OBJECT),
    (TASK, "notify_data.body.app_id", STRICT),
    (TASK, "notify_data.body.task_id", STRICT),
    (TASK, "notify_data.body.task_type", STRICT),
    (TASK, "notify_data.body.status", STRICT),
    (TASK, "notify_data.body.status_desc", DESCRIPTIVE),
    (TASK, "request_id", DESCRIPTIVE),
]
# Outside the table: the fields a body is recognised by, before any validation (a body whose
# type is not recognised is logged as unrecognised, never refused), and the platform's time, with
# a rule of its own (one of the two must say it). Both have tests of their own below.
RECOGNITION = dict.fromkeys(OCEANCONNECT, ("notifyType",)) | {TASK: ("resource", "event")}
TIMES = ("event_time", "event_time_ms")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # the field is left out of the body

# (id, value sent) for which a strict field is refused.
STRICT_CASES: dict[str, list[tuple[str, object]]] = {
    STRICT: [
        ("missing", MISSING),
        ("null", None),
        ("17", 17),
        ("0", 0),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ("[]", []),
        ("list", ["d-1"]),
        ("{}", {}),
        ("object", {"value": "d-1"}),
    ],
    STRICT_OBJECT: [
        ("missing", MISSING),
        ("null", None),
        ("text", "text"),
        ("17", 17),
        ("true", True),
        ("[]", []),
    ],
}
# (id, value sent, value kept) for a descriptive field.
KEPT_CASES: dict[str, list[tuple[str, object, object]]] = {
    DESCRIPTIVE: [
        ("missing", MISSING, None),
        ("null", None, None),
        ("text", "as sent", "as sent"),
        ("17", 17, "17"),
        ("0", 0, "0"),
        ("-3", -3, "-3"),
        ("1.5", 1.5, "1.5"),
        ("true", True, None),
        ("false", False, None),
        ("[]", [], None),
        ("list", ["1.5"], None),
        ("{}", {}, None),
        ("object", {"value": "1.5"}, None),
    ],
    UPGRADE_TIME: [
        ("missing", MISSING, None),
        ("null", None, None),
        ("text", "183", "183"),
        ("183", 183, 183),
        ("0", 0, 0),
        ("1.5", 1.5, "1.5"),
        ("true", True, None),
        ("false", False, None),
        ("[]", [], None),
        ("list", [183], None),
        ("{}", {}, None),
        ("object", {"value": 183}, None),
    ],
}


KEPT_CASES[CODE] = KEPT_CASES[DESCRIPTIVE]


def _name(stem: str, field: str) -> str:
    return f"{stem.split('-', 1)[1]}.{field}"


def _strict_cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(stem, field, value, id=f"{_name(stem, field)}={case}")
        for stem, field, tier in FIELDS
        for case, value in STRICT_CASES.get(tier, [])
    ]


def _kept_cases() -> list[pytest.ParameterSet]:
    return [
        pytest.param(stem, field, value, kept, id=f"{_name(stem, field)}={case}")
        for stem, field, tier in FIELDS
        for case, value, kept in KEPT_CASES.get(tier, [])
    ]


def _fields(*tiers: str) -> list[pytest.ParameterSet]:
    return [
        pytest.param(stem, field, id=_name(stem, field))
        for stem, field, tier in FIELDS
        if tier in tiers
    ]


def _body(stem: str, **changes: object) -> dict[str, Any]:
    """A copy of the example, with the dotted `changes` applied (MISSING deletes)."""
    body: dict[str, Any] = json.loads(json.dumps(BODIES[stem]))
    for path, value in changes.items():
        *parents, last = path.split(".")
        holder = body
        for parent in parents:
            holder = holder[parent]
        if value is MISSING:
            del holder[last]
        else:
            holder[last] = value
    return body


def _raw(stem: str, field: str | None = None, value: object = MISSING) -> bytes:
    body = _body(stem) if field is None else _body(stem, **{field: value})
    return json.dumps(body).encode()


def _read(notification: BaseModel | None, path: str) -> object:
    assert notification is not None
    value: object = notification
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _refused_fields(raw: bytes) -> set[str]:
    with pytest.raises(Refusal) as refused:
        decode(raw)
    assert refused.value.kind == "invalid"
    return {detail["field"] for detail in refused.value.details}


def _same(actual: object, expected: object) -> bool:
    """Equal and of the same type: "0" is not 0, 1 is not True."""
    return actual == expected and type(actual) is type(expected)


def _model_paths(model: type[BaseModel], prefix: str = "") -> dict[str, bool]:
    """Every field of a model and of the models it nests, by dotted path: is it required?"""
    paths: dict[str, bool] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        paths[path] = info.is_required()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            paths |= _model_paths(info.annotation, f"{path}.")
    return paths


@pytest.mark.parametrize("stem", MODELS)
def test_the_table_covers_every_field(stem: str) -> None:
    required = _model_paths(MODELS[stem])
    tiers = {field: tier for table_stem, field, tier in FIELDS if table_stem == stem}
    unruled = set(RECOGNITION[stem]) | (set(TIMES) if stem == TASK else set())
    assert set(required) == set(tiers) | unruled
    assert {field: required[field] for field in tiers} == {
        field: tier in {STRICT, STRICT_OBJECT} for field, tier in tiers.items()
    }


@pytest.mark.parametrize("stem", MODELS)
def test_each_example_is_accepted_as_it_is(stem: str) -> None:
    event = decode(_raw(stem))
    assert isinstance(event.notification, MODELS[stem])


@pytest.mark.parametrize(("stem", "field", "value"), _strict_cases())
def test_a_strict_field_missing_null_or_of_the_wrong_type_is_refused(
    stem: str, field: str, value: object
) -> None:
    assert _refused_fields(_raw(stem, field, value)) == {field}


@pytest.mark.parametrize(("stem", "field", "value", "kept"), _kept_cases())
def test_a_descriptive_field_is_kept_as_best_it_can_be(
    stem: str, field: str, value: object, kept: object
) -> None:
    event = decode(_raw(stem, field, value))
    assert isinstance(event.notification, MODELS[stem])
    assert event.stream_type == ("task" if stem == TASK else "device")
    assert _same(_read(event.notification, field), kept)


@pytest.mark.parametrize(("stem", "field", "value", "kept"), _kept_cases())
def test_replay_keeps_a_descriptive_field_the_same_way(
    stem: str, field: str, value: object, kept: object
) -> None:
    raw = _raw(stem, field, value)
    notification = decode_logged(decode(raw).event_type, raw)
    assert isinstance(notification, MODELS[stem])
    assert _same(_read(notification, field), kept)


@pytest.mark.parametrize(("stem", "field"), _fields(DESCRIPTIVE, CODE, UPGRADE_TIME))
def test_nul_is_removed_from_a_descriptive_text(stem: str, field: str) -> None:
    event = decode(_raw(stem, field, "\x00up\x00grade\x00"))
    assert _same(_read(event.notification, field), "upgrade")


@pytest.mark.parametrize(("stem", "field"), _fields(STRICT))
def test_nul_in_a_strict_text_is_refused(stem: str, field: str) -> None:
    sent = _read(decode(_raw(stem)).notification, field)
    assert _refused_fields(_raw(stem, field, f"{sent}\x00")) == {field}


@pytest.mark.parametrize(("stem", "field"), _fields(DESCRIPTIVE, UPGRADE_TIME))
@pytest.mark.parametrize(
    ("length", "kept"), [(MAX_TEXT, MAX_TEXT), (MAX_TEXT + 1, MAX_TEXT), (20_000, MAX_TEXT)]
)
def test_a_long_descriptive_text_is_kept_truncated(
    stem: str, field: str, length: int, kept: int
) -> None:
    assert MAX_TEXT == 4096
    event = decode(_raw(stem, field, "v" * length))
    assert _same(_read(event.notification, field), "v" * kept)


@pytest.mark.parametrize(("stem", "field"), _fields(CODE))
@pytest.mark.parametrize(
    ("length", "kept"), [(MAX_CODE, MAX_CODE), (MAX_CODE + 1, MAX_CODE), (20_000, MAX_CODE)]
)
def test_a_long_code_or_version_is_kept_truncated(
    stem: str, field: str, length: int, kept: int
) -> None:
    assert MAX_CODE == 128
    event = decode(_raw(stem, field, "v" * length))
    assert _same(_read(event.notification, field), "v" * kept)


@pytest.mark.parametrize(
    ("stem", "field"),
    [
        pytest.param(stem, field, id=_name(stem, field))
        for stem in MODELS
        for field in RECOGNITION[stem]
    ],
)
@pytest.mark.parametrize(
    "value",
    [MISSING, None, 17, True, [], {}, "", "somethingElse"],
    ids=["missing", "null", "17", "true", "[]", "{}", "empty", "other"],
)
def test_a_body_without_a_recognised_type_is_accepted_as_unrecognised(
    stem: str, field: str, value: object
) -> None:
    event = decode(_raw(stem, field, value))
    assert (event.stream_type, event.notification) == ("unrecognised", None)


# --- the platform's time: event_time and event_time_ms, one of which must say it ---

GOOD_TIME = {"event_time": "20261127T010203Z", "event_time_ms": "2026-11-27T01:02:03.000Z"}
AT = datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)
AT_250 = AT.replace(microsecond=250_000)


def _other(field: str) -> str:
    return TIMES[1 - TIMES.index(field)]


@pytest.mark.parametrize("field", TIMES)
@pytest.mark.parametrize("absent", [MISSING, None], ids=["missing", "null"])
def test_either_time_may_be_absent_when_the_other_says_it(
    field: str, absent: _Missing | None
) -> None:
    body = _body(TASK, **{**GOOD_TIME, field: absent})
    event = decode(json.dumps(body).encode())
    assert event.occurred_at == AT
    assert _read(event.notification, field) is None


@pytest.mark.parametrize("event_time", [MISSING, None], ids=["missing", "null"])
@pytest.mark.parametrize("event_time_ms", [MISSING, None], ids=["missing", "null"])
def test_a_task_without_any_time_is_refused(
    event_time: _Missing | None, event_time_ms: _Missing | None
) -> None:
    body = _body(TASK, event_time=event_time, event_time_ms=event_time_ms)
    with pytest.raises(Refusal) as refused:
        decode(json.dumps(body).encode())
    assert refused.value.kind == "invalid"
    assert "event_time" in refused.value.message


@pytest.mark.parametrize("field", TIMES)
@pytest.mark.parametrize(
    "value",
    [
        17,
        1764205323000,
        1.5,
        True,
        [],
        {},
        "2026-11-27 01:02:03",
        "2026-13-01T00:00:00Z",
        "20261301T000000Z",
        "2026-11-27T01:02:03.000",
        "yesterday",
        "",
    ],
    ids=json.dumps,
)
def test_a_present_time_of_the_wrong_type_or_shape_is_refused(field: str, value: object) -> None:
    body = _body(TASK, **{**GOOD_TIME, field: value})
    assert _refused_fields(json.dumps(body).encode()) == {field}


@pytest.mark.parametrize("field", TIMES)
@pytest.mark.parametrize(
    ("sent", "read"),
    [
        pytest.param(sent, read, id=sent)
        for sent, read in [
            ("20261127T010203Z", PlatformTime(AT, precise=False)),
            ("2026-11-27T01:02:03Z", PlatformTime(AT, precise=False)),
            ("2026-11-27T01:02:03.000Z", PlatformTime(AT, precise=True)),
            ("2026-11-27T01:02:03.250Z", PlatformTime(AT_250, precise=True)),
            # Finer than the microsecond: the rest is cut, not rounded.
            ("2026-11-27T01:02:03.250000999Z", PlatformTime(AT_250, precise=True)),
            ("2026-11-27T01:02:03.2500009Z", PlatformTime(AT_250, precise=True)),
            ("2026-11-27T09:02:03.000+08:00", PlatformTime(AT, precise=True)),
            ("2026-11-26T23:02:03.000-02:00", PlatformTime(AT, precise=True)),
            # Offsets with minutes (India, Nepal, Newfoundland), with and without the colon.
            ("2026-11-27T06:32:03.000+05:30", PlatformTime(AT, precise=True)),
            ("20261127T064703+0545", PlatformTime(AT, precise=False)),
            ("2026-11-26T21:32:03-03:30", PlatformTime(AT, precise=False)),
        ]
    ],
)
def test_each_time_field_reads_every_shape_the_platform_writes(
    field: str, sent: str, read: PlatformTime
) -> None:
    body = _body(TASK, **{field: sent, _other(field): MISSING})
    event = decode(json.dumps(body).encode())
    assert isinstance(event.notification, BatchTaskUpdated)
    assert event.notification.occurred() == read
    offset = event.notification.occurred().at.utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0
    assert event.occurred_at == read.at


def test_the_millisecond_time_is_preferred() -> None:
    body = _body(TASK, event_time="20261127T010203Z", event_time_ms="2026-11-27T01:02:04.500Z")
    event = decode(json.dumps(body).encode())
    assert isinstance(event.notification, BatchTaskUpdated)
    assert event.notification.occurred() == PlatformTime(
        AT.replace(second=4, microsecond=500_000), precise=True
    )


# --- batch tasks that are not upgrades: logged in their task's stream, not projected ---


@pytest.mark.parametrize("task_type", ["createDevices", "deleteDevices", "createCommands", "x"])
def test_a_task_of_another_type_is_logged_but_not_projected(task_type: str) -> None:
    raw = _raw(TASK, "notify_data.body.task_type", task_type)
    event = decode(raw)
    assert (event.stream_type, event.stream_id, event.event_type) == (
        "task",
        BODIES[TASK]["notify_data"]["body"]["task_id"],
        "batchtask.update",
    )
    assert event.occurred_at == datetime(2015, 12, 12, 12, 12, 12, tzinfo=UTC)
    assert event.notification is None
    assert decode_logged("batchtask.update", raw) is None


@pytest.mark.parametrize("task_type", ["firmwareUpgrade", "softwareUpgrade"])
def test_an_upgrade_task_is_projected(task_type: str) -> None:
    raw = _raw(TASK, "notify_data.body.task_type", task_type)
    assert isinstance(decode(raw).notification, BatchTaskUpdated)
    replayed = decode_logged("batchtask.update", raw)
    assert isinstance(replayed, BatchTaskUpdated)
    assert replayed.notify_data.body.task_type == task_type


@pytest.mark.parametrize(
    "field", ["notify_data.body.task_id", "notify_data.body.app_id", "notify_data.body.status"]
)
def test_a_task_of_another_type_still_needs_its_strict_fields(field: str) -> None:
    body = _body(TASK, **{"notify_data.body.task_type": "createDevices", field: None})
    assert _refused_fields(json.dumps(body).encode()) == {field}


@pytest.mark.parametrize(
    ("stem", "field"),
    [
        ("oceanconnect-swUpgradeStateChangeNotify", "deviceId"),
        ("oceanconnect-swUpgradeResultNotify", "operationId"),
        ("oceanconnect-fwUpgradeStateChangeNotify", "subOperationId"),
        ("oceanconnect-fwUpgradeResultNotify", "appId"),
        (TASK, "notify_data.body.task_id"),
    ],
)
def test_an_id_is_at_most_256_characters(stem: str, field: str) -> None:
    assert decode(json.dumps(_body(stem, **{field: "i" * 256})).encode()).notification
    with pytest.raises(Refusal) as refused:
        decode(json.dumps(_body(stem, **{field: "i" * 257})).encode())
    assert {d["field"] for d in refused.value.details} == {field}
