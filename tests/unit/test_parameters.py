"""A route's query model parses what its document says, and refuses as the API always has."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from tracker.http.devices import DevicesQuery
from tracker.http.errors import ApiError
from tracker.http.events import EventsQuery
from tracker.http.openapi import document
from tracker.http.parameters import MAX_LIMIT, PageQuery, Query
from tracker.http.stream import StreamQuery


def refusal(query: type[Query], given: dict[str, str]) -> dict[str, Any]:
    with pytest.raises(ApiError) as refused:
        query.parse(given)
    error = refused.value
    assert (error.status, error.code) == (400, "invalid_parameter")
    [detail] = error.details
    assert detail["problem"] == error.message
    return {"field": detail["field"], "message": error.message}


def test_values_are_parsed_and_defaults_filled() -> None:
    query = DevicesQuery.parse({"state": "downloading", "stuck_for": "90", "limit": "5"})
    assert (query.track, query.state, query.stuck_for, query.limit, query.cursor) == (
        None,
        "downloading",
        90.0,
        5,
        None,
    )
    assert query.where().track == "software"  # a track filter looks at software by default
    assert PageQuery.parse({}).limit == 100


@pytest.mark.parametrize(
    ("given", "field", "message"),
    [
        ({"limit": "0"}, "limit", f"limit must be a whole number from 1 to {MAX_LIMIT}, got '0'"),
        (
            {"limit": "\u00b2"},
            "limit",
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got '²'",
        ),
        (
            {"state": "flying"},
            "state",
            "state must be one of idle, downloading, downloaded, updating; got 'flying'",
        ),
        (
            {"stuck_for": "nan"},
            "stuck_for",
            "stuck_for must be a number of seconds >= 0; got 'nan'",
        ),
        (
            {"cursor": "{x}"},
            "cursor",
            "cursor is not one this server issued; use next_cursor as given",
        ),
        # The first refused parameter, in the order the document lists them, is the one named.
        (
            {"limit": "x", "track": "{problem}"},
            "track",
            "track must be one of software, firmware; got '{problem}'",
        ),
    ],
)
def test_a_refused_value_is_a_400_naming_it(
    given: dict[str, str], field: str, message: str
) -> None:
    assert refusal(DevicesQuery, given) == {"field": field, "message": message}


def test_the_first_of_a_repeated_parameter_counts_and_others_are_ignored() -> None:
    request = make_mocked_request("GET", "/v1/events?limit=3&limit=x&token=t&colour=red")
    assert EventsQuery.of(request).limit == 3


def test_a_cursor_carries_the_position_so_after_is_not_read() -> None:
    request = make_mocked_request("GET", "/v1/events?after=x&cursor=eyJhZnRlciI6Mn0")
    assert EventsQuery.of(request).cursor == 2
    with pytest.raises(ApiError):
        EventsQuery.of(make_mocked_request("GET", "/v1/events?after=x"))


def test_last_event_id_wins_over_after() -> None:
    request = make_mocked_request("GET", "/v1/stream?after=x", headers={"Last-Event-ID": "7"})
    assert StreamQuery.of(request).after == 7
    refused = make_mocked_request("GET", "/v1/stream?after=1", headers={"Last-Event-ID": "x"})
    with pytest.raises(ApiError, match=r"^Last-Event-ID or after must be a log position; got 'x'$"):
        StreamQuery.of(refused)


def test_the_document_lists_each_model_s_fields_with_their_schemas() -> None:
    described = document()["paths"]["/v1/devices"]["get"]["parameters"]
    assert [p["name"] for p in described] == list(DevicesQuery.model_fields)
    limit = next(p for p in described if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
        "description": "page size",
    }
    state = next(p for p in described if p["name"] == "state")
    assert state["schema"] == {
        "type": "string",
        "enum": ["idle", "downloading", "downloaded", "updating"],
    }  # no default: absent means no filter
