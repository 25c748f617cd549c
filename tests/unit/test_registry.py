"""The table of notification types is the one place a type is known: every model the projections
fold has exactly one entry, each entry recognises the bodies of its type and only those, and the
decoder, the fold and the API's list of bodies all answer from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest

from tests.unit.builders import at, fw, fw_result, sw, sw_result, task
from tracker.domain.delivery import decode, decode_logged
from tracker.domain.notifications import Notification
from tracker.domain.projection import Projection, keys_of
from tracker.domain.reducers import TASK_UPDATES
from tracker.domain.registry import (
    BY_NAME,
    NOTIFICATION_TYPES,
    PROJECTED_STREAMS,
    PUSHED_MODELS,
    REDUCERS,
    NotificationType,
    recognised,
)
from tracker.http.openapi import document

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_every_folded_model_has_exactly_one_entry() -> None:
    models = [t.model for t in NOTIFICATION_TYPES]
    assert sorted(m.__name__ for m in models) == sorted(m.__name__ for m in get_args(Notification))
    assert len(set(models)) == len(models)
    assert len(BY_NAME) == len(NOTIFICATION_TYPES)  # names are unique
    assert set(REDUCERS) == set(models)
    assert {t.stream for t in NOTIFICATION_TYPES} == set(PROJECTED_STREAMS)


PUSHED = [t for t in NOTIFICATION_TYPES if t.shape is not None]


@pytest.mark.parametrize("kind", PUSHED, ids=lambda t: t.name)
def test_an_entry_recognises_its_own_shape_and_no_other_does(kind: NotificationType[Any]) -> None:
    assert kind.shape is not None
    assert recognised(kind.shape) is kind
    others = [t for t in NOTIFICATION_TYPES if t is not kind and t.recognises(kind.shape)]
    assert others == []


OCEANCONNECT = [t for t in NOTIFICATION_TYPES if "notifyType" in (t.shape or {})]


@pytest.mark.parametrize("kind", OCEANCONNECT, ids=lambda t: t.name)
def test_an_oceanconnect_entry_is_named_by_the_notify_type_its_model_accepts(
    kind: NotificationType[Any],
) -> None:
    (accepted,) = get_args(kind.model.model_fields["notifyType"].annotation)
    assert accepted == kind.name == (kind.shape or {})["notifyType"]
    assert len(OCEANCONNECT) == 4


def test_an_entry_without_a_shape_is_never_recognised_in_a_delivery() -> None:
    written_by_us = NotificationType(
        "iotda.batchtask.observed", NOTIFICATION_TYPES[-1].model, None, "task", str, TASK_UPDATES
    )
    assert not written_by_us.recognises({"resource": "batchtask", "event": "update"})
    assert not written_by_us.recognises({})


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_a_delivery_is_keyed_as_its_entry_says(example: Path) -> None:
    raw = example.read_bytes()
    event = decode(raw)
    kind = recognised(json.loads(raw))
    if kind is None:
        assert (event.stream_type, event.notification) == ("unrecognised", None)
        return
    assert event.event_type == kind.name
    assert event.stream_type == kind.stream
    model = kind.model.model_validate_json(raw)
    assert event.stream_id == kind.stream_id(model)
    assert event.occurred_at == kind.occurred_at(model)
    assert decode_logged(kind.name, raw) == event.notification


def test_a_batch_task_of_another_type_is_logged_in_its_stream_and_not_folded() -> None:
    body = task("Processing").model_dump(mode="json")
    body["notify_data"]["body"]["task_type"] = "createDevices"
    raw = json.dumps(body).encode()
    event = decode(raw)
    assert (event.stream_type, event.stream_id, event.notification) == ("task", "t-1", None)
    assert decode_logged("batchtask.update", raw) is None


def test_the_fold_and_the_keys_follow_each_type_to_its_reducer() -> None:
    notifications: list[Notification] = [
        sw("downloading", device="a"),
        sw_result(device="a"),
        fw("idle", device="b"),
        fw_result(device="b"),
        task("Waitting", task_id="t"),
    ]
    projection = Projection()
    for position, n in enumerate(notifications, 1):
        projection.apply(at(position, n))
    assert sorted(projection.tracks) == [("a", "software"), ("b", "firmware")]
    assert list(projection.tasks) == ["t"]
    keys = keys_of(notifications)
    assert (keys.devices, keys.tasks) == ({"a", "b"}, {"t"})


def test_the_api_documents_exactly_the_pushed_types_as_recognised_bodies() -> None:
    described = document()["paths"]["/v1/notifications"]["post"]["requestBody"]
    refs = [s["$ref"] for s in described["content"]["application/json"]["schema"]["anyOf"][:-1]]
    assert [r.rsplit("/", 1)[1] for r in refs] == [m.__name__ for m in PUSHED_MODELS]
    assert list(PUSHED_MODELS) == [t.model for t in PUSHED]
