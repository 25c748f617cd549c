"""The times the platforms write (`event_time`, `event_time_ms`), read as aware UTC instants.

Parsing is total: any string gives an instant or a ValueError, never an OverflowError from an
offset converted at the ends of the calendar (9999-12-31T23:59:59-14:00 is past year 9999 in
UTC). Whether an instant may be *accepted* is a separate question (`admissible`): a delivery is
admitted only with times in instants.py's range, while the log may hold older events whose time
is outside it, which replay must still read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import NamedTuple

from tracker.domain.instants import RANGE, storable


class PlatformTime(NamedTuple):
    """A time the platform wrote, and whether it was written to the millisecond (or finer)."""

    at: datetime
    precise: bool

    def truncated(self) -> datetime:
        return self.at.replace(microsecond=0)


# The shapes the platform writes these times in, all UTC:
# - yyyyMMdd'T'HHmmss'Z', e.g. 20151212T121212Z: `event_time` on every IoTDA push page
#   (iot_06_v5_01204 batch task, 01201 device status, 01202 properties, 01205 messages...) and
#   most time fields of the SDKs' models (huaweicloudsdkiotda/v5/model/task.py `create_time`,
#   "yyyyMMdd'T'HHmmss'Z', 如20151212T121212Z");
# - yyyy-MM-dd'T'HH:mm:ss.SSS'Z', e.g. 2015-12-12T12:12:12.000Z: `event_time_ms` on those pages,
#   and the SDKs' other time fields (model/export_task.py `create_time`,
#   "2020-08-12T12:12:12.333Z");
# - the same without the fraction, 2026-11-27T01:02:03Z: not on the pages, but sent as
#   `event_time_ms` in the wild (issue 11); a time to the second, see `PlatformTime.precise`.
# Both fields are read in any of them (a fraction of 1 to 9 digits; a numeric offset instead of Z,
# hours 00-23 and minutes 00-59 as RFC 3339 has them, is converted to UTC), so a sender that
# mixes them up loses nothing.
_TIME = re.compile(
    r"(\d{4})(-?)(\d{2})\2(\d{2})T(\d{2})(:?)(\d{2})\6(\d{2})"
    r"(?:[.,](\d{1,9}))?(Z|z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)"
)
TIME_SHAPES = (
    "yyyyMMdd'T'HHmmss'Z' (20151212T121212Z) or yyyy-MM-dd'T'HH:mm:ss[.SSS]'Z' "
    "(2015-12-12T12:12:12.000Z)"
)
OUT_OF_RANGE = f"must be an instant {RANGE} (UTC)"


def parse_platform_time(value: str) -> PlatformTime:
    """One of the platform's time shapes (above) as an aware UTC datetime and its precision."""
    match = _TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a UTC time formatted {TIME_SHAPES}")
    year, _, month, day, hour, _, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC if zone in ("Z", "z") else _offset(zone),
        )
    except ValueError:  # no such day or time (2026-02-30, 24:00:00, a leap second)
        raise ValueError(f"must be a UTC time formatted {TIME_SHAPES}") from None
    try:
        at = moment.astimezone(UTC)
    except OverflowError:  # past the calendar's end in UTC: 9999-12-31T23:59:59-14:00
        raise ValueError(OUT_OF_RANGE) from None
    return PlatformTime(at, fraction is not None)


def admissible(value: str) -> str | None:
    """Why a time a delivery carries cannot be accepted (None: it can): its shape, or an
    instant outside instants.py's range, which would not be stored exactly."""
    try:
        moment = parse_platform_time(value).at
    except ValueError as error:
        return str(error)
    return None if storable(moment) else OUT_OF_RANGE


def _offset(zone: str) -> timezone:
    digits = zone[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:])
    return timezone((-1 if zone[0] == "-" else 1) * timedelta(minutes=minutes))
