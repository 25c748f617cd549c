"""The platform's times at the ends of the calendar: parsed without overflow, admitted only in
the range the store keeps exactly (tracker/domain/instants.py), read back from older rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.task_bodies import task_body
from tracker.domain.delivery import Refusal, decode, decode_logged
from tracker.domain.instants import EARLIEST, LATEST, as_utc, storable
from tracker.domain.notifications import BatchTaskUpdated
from tracker.domain.platform_time import OUT_OF_RANGE, admissible, parse_platform_time
from tracker.domain.recorded import Recorded
from tracker.domain.task import Task, TaskEvent, evolve_task, in_utc

FIRST = datetime.min.replace(tzinfo=UTC)  # asyncpg writes it as -infinity
LAST = datetime.max.replace(tzinfo=UTC)  # and this as infinity


def written(moment: datetime, offset: timedelta = timedelta(0)) -> str:
    """`moment` as the platform writes event_time_ms, in the zone of `offset`."""
    local = moment.astimezone(timezone(offset)).replace(tzinfo=None)
    zone = "Z" if offset == timedelta(0) else _zone(offset)
    return f"{local.year:04d}-{local:%m-%dT%H:%M:%S.%f}{zone}"


def _zone(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("1970-01-01T00:00:00Z", True),
        ("19700101T000000Z", True),
        ("1970-01-01T00:00:00.000Z", True),
        ("1970-01-01T14:00:00+14:00", True),  # the first instant, written east of UTC
        ("1969-12-31T23:59:59.999999Z", False),
        ("1970-01-01T13:59:59.999+14:00", False),
        ("9999-12-30T00:00:00Z", True),
        ("9999-12-29T10:00:00-14:00", True),  # the last instant, written west of UTC
        ("9999-12-30T00:00:00.000001Z", False),
        ("9999-12-30T14:00:00.001+14:00", False),
        ("0001-01-01T00:00:00Z", False),  # stored as -infinity by asyncpg
        ("00010101T000000Z", False),
        ("9999-12-31T23:59:59.999999Z", False),  # stored as infinity
        ("0001-01-01T00:00:00+14:00", False),  # before year 1 in UTC: overflowed
        ("9999-12-31T23:59:59-14:00", False),  # past year 9999 in UTC: overflowed
        ("0001-01-01T00:00:00+23:59", False),
        ("9999-12-31T23:59:59-23:59", False),
    ],
)
def test_a_time_is_admitted_exactly_within_the_range(text: str, kept: bool) -> None:
    why = admissible(text)
    assert (why is None) == kept, why
    if not kept:
        assert why == OUT_OF_RANGE
        assert "1970-01-01T00:00:00Z" in why
        assert "9999-12-30T00:00:00Z" in why


@pytest.mark.parametrize(
    "text",
    ["2026-11-27T01:02:03+24:00", "2026-11-27T01:02:03+05:60", "2026-11-27T01:02:03-99:99"],
)
def test_an_offset_rfc_3339_does_not_allow_is_a_shape_error(text: str) -> None:
    with pytest.raises(ValueError, match="formatted"):
        parse_platform_time(text)


def test_the_calendars_ends_parse_without_overflow_where_they_convert() -> None:
    """Parsing is what replay does with logged events: year 1 in UTC still reads (as an older
    version logged it); a time that leaves the calendar in UTC is a ValueError, never an
    OverflowError (which escaped the validator as a 500)."""
    assert parse_platform_time("0001-01-01T00:00:00Z").at == FIRST
    assert parse_platform_time("9999-12-31T23:59:59.999999Z").at == LAST
    for text in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        with pytest.raises(ValueError, match="must be an instant from 1970"):
            parse_platform_time(text)


OFFSETS = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timedelta(minutes=m)
)
# Every instant whose local time in some zone is still in Python's calendar.
INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis draws naive times; UTC is set below
    max_value=datetime(9999, 12, 30, 23, 59, 59, 999999),  # noqa: DTZ001
).map(lambda d: d.replace(tzinfo=UTC))


@given(INSTANTS, OFFSETS)
def test_any_instant_in_any_zone_is_admitted_iff_in_range_and_then_read_exactly(
    moment: datetime, offset: timedelta
) -> None:
    text = written(moment, offset)
    why = admissible(text)
    assert (why is None) == (EARLIEST <= moment <= LATEST)
    if why is None:
        read = parse_platform_time(text)
        assert read.at == moment
        assert read.at.utcoffset() == timedelta(0)


@given(
    st.integers(0, 9999),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["Z", "+14:00", "-14:00", "+23:59", "-23:59", "+0000", "-0001"]),
)
def test_any_text_of_the_shape_gives_a_time_or_a_value_error(
    year: int, month: int, day: int, hour: int, minute: int, zone: str
) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00{zone}"
    try:
        read = parse_platform_time(text)
    except ValueError:
        assert admissible(text) is not None
    else:
        assert read.at.tzinfo is UTC
        assert (admissible(text) is None) == storable(read.at)


@pytest.mark.parametrize("field", ["event_time", "event_time_ms"])
@pytest.mark.parametrize(
    "text", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]
)
def test_a_delivery_out_of_range_is_refused_naming_the_field(field: str, text: str) -> None:
    with pytest.raises(Refusal) as refused:
        decode(task_body(**{field: text}))
    assert (refused.value.kind, refused.value.code) == ("invalid", "schema_violation")
    assert [d["field"] for d in refused.value.details] == [field]
    assert "1970-01-01T00:00:00Z" in refused.value.message


def test_an_unused_time_out_of_range_is_refused_too() -> None:
    """Either field, present, must be a time the tracker keeps: as for its shape."""
    body = task_body(event_time="00010101T000000Z", event_time_ms="2026-11-27T01:02:03.000Z")
    with pytest.raises(Refusal) as refused:
        decode(body)
    assert [d["field"] for d in refused.value.details] == ["event_time"]


def test_replay_still_reads_a_year_one_event_an_older_version_logged() -> None:
    raw = task_body(event_time_ms="0001-01-01T00:00:00.000Z")
    logged = decode_logged("batchtask.update", raw)
    assert isinstance(logged, BatchTaskUpdated)
    assert logged.occurred_at() == FIRST


# --- a task row an older version wrote: ±infinity, read back naive ---

RECEIVED = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def recorded(raw: bytes, position: int) -> Recorded[BatchTaskUpdated]:
    notification = decode(raw).notification
    assert isinstance(notification, BatchTaskUpdated)
    return Recorded(position, RECEIVED + timedelta(seconds=position), notification)


def as_stored(moment: datetime) -> datetime:
    """What asyncpg reads back: -infinity and infinity come back naive."""
    return moment.replace(tzinfo=None) if moment in (FIRST, LAST) else moment


def older_row(status: str, at: datetime) -> Task:
    """A task folded from an event at `at` (aware year 1 or 9999, as an older version
    accepted), then read back from the store with ±infinity as naive times."""
    event = TaskEvent(status, None, at, precise=True, request_id=None)  # type: ignore[arg-type]
    return Task(
        task_id="t",
        app_id="a",
        task_type="softwareUpgrade",
        status=status,  # type: ignore[arg-type]
        status_desc=None,
        event_time=as_stored(at),
        request_id=None,
        seen=frozenset({"time:older"}),
        last_position=1,
        updated_at=RECEIVED,
        event_time_precise=True,
        first_run_at=as_stored(at) if status == "Processing" else None,
        latest=(event,),
    )


def test_a_row_from_year_one_reads_as_utc_and_a_later_event_applies() -> None:
    row = older_row("Processing", FIRST)
    assert row.event_time.tzinfo is None  # the failure this guards: naive from the store
    later = recorded(task_body(status="Success", event_time_ms="2026-11-27T01:02:03.000Z"), 2)
    task, transition = evolve_task(row, later)
    assert task is not None
    assert transition is not None
    assert (task.status, transition.applied, transition.from_status) == (
        "Success",
        True,
        "Processing",
    )
    assert task.first_run_at == FIRST


def test_a_row_from_year_9999_reads_as_utc_and_a_later_event_is_late() -> None:
    """infinity was the newest time there is: what came after it arrives late, as it did."""
    row = older_row("Processing", LAST)
    later = recorded(task_body(status="Fail", event_time_ms="2026-11-27T01:02:03.000Z"), 2)
    task, transition = evolve_task(row, later)
    assert task is not None
    assert transition is not None
    assert (task.status, transition.applied) == ("Processing", False)
    assert task.event_time == LAST


def test_in_utc_leaves_an_aware_task_as_it_is() -> None:
    row = older_row("Waitting", datetime(2026, 1, 1, tzinfo=UTC))
    assert in_utc(row) is row
    assert as_utc(FIRST.replace(tzinfo=None)) == FIRST
