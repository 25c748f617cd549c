"""The links of the hash chain (tracker/store/chain.py): what each covers, and a layout that
cannot change silently (logs already written are verified with it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from tracker.store import chain
from tracker.store.events import LoggedEvent

EVENT = LoggedEvent(
    7,
    "device",
    "d-1",
    "swUpgradeStateChangeNotify",
    b'{"a":1}',
    datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC),
    None,
    None,
)


def test_the_layout_is_the_one_logs_were_written_with() -> None:
    # Also what PostgreSQL gives for sha256(zeros || '\x02' || int8send(7) || ... ), written out
    # by hand (tests/integration/test_hash_chain.py checks the append's own function).
    assert chain.all_fields(None, EVENT).hex() == (
        "0983e9f4677113b79e1977ebcbd5f4bbf7dec701186b57aabec9e27b7ef70b6f"
    )
    assert chain.body_only(None, b"{}") == chain.body_only(bytes(32), b"{}")


@pytest.mark.parametrize(
    "changed",
    [
        {"position": 8},
        {"stream_type": "task"},
        {"stream_id": "d-2"},
        {"event_type": "fwUpgradeStateChangeNotify"},
        {"received_at": EVENT.received_at - timedelta(microseconds=1)},
        {"occurred_at": EVENT.received_at},
        {"occurred_at": datetime(1970, 1, 1, tzinfo=UTC)},  # zero, not null
        {"readmitted_from": 0},  # zero, not null
        {"raw": b'{"a":2}'},
    ],
    ids=lambda changed: next(iter(changed)),
)
def test_every_stored_field_changes_the_link(changed: dict[str, object]) -> None:
    assert chain.all_fields(None, replace(EVENT, **changed)) != chain.all_fields(None, EVENT)  # type: ignore[arg-type]


def test_the_previous_link_is_covered() -> None:
    assert chain.all_fields(bytes(32), EVENT) == chain.all_fields(None, EVENT)
    assert chain.all_fields(b"\x01" * 32, EVENT) != chain.all_fields(None, EVENT)


def test_bytes_cannot_move_between_fields() -> None:
    """Every text carries its length: ("ab", "c") and ("a", "bc") are different events."""
    one = replace(EVENT, stream_type="ab", stream_id="c")
    other = replace(EVENT, stream_type="a", stream_id="bc")
    assert chain.all_fields(None, one) != chain.all_fields(None, other)
    tail = replace(EVENT, event_type="x", raw=b"y")
    shifted = replace(EVENT, event_type="xy", raw=b"")
    assert chain.all_fields(None, tail) != chain.all_fields(None, shifted)


def test_one_instant_in_any_zone_is_one_link() -> None:
    """PostgreSQL keeps an instant, not its zone: so does the link."""
    elsewhere = EVENT.received_at.astimezone(timezone(timedelta(hours=-3, minutes=-30)))
    assert chain.all_fields(None, replace(EVENT, received_at=elsewhere)) == chain.all_fields(
        None, EVENT
    )
    before_1970 = datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    assert chain._micros(before_1970) == -500_000


def test_the_instants_asyncpg_stores_as_infinities_read_back_alike() -> None:
    """asyncpg writes Python's first and last instants as -infinity and infinity and reads them
    back naive: the link is the same either way (and `tracker_micros` gives the same numbers)."""
    first, last = datetime.min, datetime.max  # noqa: DTZ901 - naive: as asyncpg reads them
    for edge in (first, last):
        aware = replace(EVENT, occurred_at=edge.replace(tzinfo=UTC))
        naive = replace(EVENT, occurred_at=edge)
        assert chain.all_fields(None, aware) == chain.all_fields(None, naive)
    assert chain._micros(first) == -62135596800000000
    assert chain._micros(last) == 253402300799999999
