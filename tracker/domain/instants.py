"""The instants the tracker keeps: the range it accepts, and stored times read back as UTC.

asyncpg writes Python's first and last instants (`datetime.min`, `datetime.max`, with or
without a zone) as PostgreSQL's `-infinity` and `infinity`, and reads those back as *naive*
`datetime.min` and `datetime.max`: a year-1 time went in aware and came out naive, and the next
comparison with an aware time raised TypeError. PostgreSQL itself keeps any year from 4713 BC
to 294276 AD; Python's calendar (years 1 to 9999) is the narrower bound, and converting near
its ends to another zone overflows. So the tracker accepts, from outside, only instants in
[EARLIEST, LATEST]:
- EARLIEST, the Unix epoch: the platforms write times of events that happened while they ran
  (IoTDA's `event_time_ms` is a Java epoch-millisecond time); an earlier one is a zeroed or
  unset clock, not an event's time.
- LATEST, two days before Python's last instant: every accepted instant is stored exactly (never
  as `infinity`), and can be shown in any zone (offsets are under 24 hours) or moved by a day
  without leaving the calendar.
Rows written by an older version may still hold `-infinity` or `infinity`: `as_utc` reads them
(and any naive time from the store) as the UTC instants they were written from.
"""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)
RANGE = "from 1970-01-01T00:00:00Z to 9999-12-30T00:00:00Z"


def storable(moment: datetime) -> bool:
    """Within [EARLIEST, LATEST]: stored exactly, compared and converted without overflow.

    An aware comparison subtracts offsets without leaving the calendar, so a moment written
    with any offset (0001-01-01T00:00:00+14:00) is judged without converting it first."""
    return moment.tzinfo is not None and EARLIEST <= moment <= LATEST


def as_utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC instant: asyncpg reads `-infinity`/`infinity` as naive
    `datetime.min`/`datetime.max`, which were UTC when written (as in store/chain.py)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
