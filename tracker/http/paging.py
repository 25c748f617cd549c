"""Keyset pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` out; cursors are opaque."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from tracker.domain.instants import storable
from tracker.domain.notifications import MAX_ID
from tracker.http.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


MAX_BIGINT = 2**63 - 1


def whole_number(raw: str) -> int | None:
    """ASCII digits only (str.isdigit also takes '²', which int() refuses), within bigint."""
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= MAX_BIGINT:
        return int(raw)
    return None


def limit_of(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    limit = whole_number(raw)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise _bad("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}, got {raw!r}")
    return limit


def position_param(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "0")
    position = whole_number(raw)
    if position is None:
        raise _bad(name, f"{name} must be a log position (a whole number >= 0), got {raw!r}")
    return position


def resume_after(request: web.Request) -> int:
    """Where a log-ordered list resumes: the cursor's position, else ?after= (default 0)."""
    after = cursor_after(request)
    return position_param(request, "after") if after is None else after


def encode_cursor(after: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def cursor_after(request: web.Request) -> int | None:
    """The position a cursor resumes after, or None when no cursor was given."""
    after = _cursor_key(request)
    if after is None:
        return None
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= MAX_BIGINT:
        raise _bad("cursor", _FOREIGN_CURSOR)
    return after


# What one value of a keyset cursor may be: `str` (an id, as notifications.py bounds ids),
# `int` (a position), `datetime` (a stored time, in instants.py's range), or one of a few values.
Kind = type | tuple[str, ...]


def cursor_key(request: web.Request, kinds: tuple[Kind, ...]) -> tuple[Any, ...] | None:
    """The key a cursor resumes after, typed as `kinds`, or None when no cursor was given.

    A cursor is decoded from the client's text, so every value is checked against what the
    listing's keyset holds before it reaches a query: a time outside the range the store keeps
    would overflow in the driver (a 500), an id no notification could carry matches nothing.
    A cursor of another list's shape is refused like a forged one."""
    after = _cursor_key(request)
    if after is None:
        return None
    # As `key_cursor` writes them: one value bare, several as a list of exactly that many.
    values = after if len(kinds) > 1 and isinstance(after, list) else [after]
    if len(values) != len(kinds):
        raise _bad("cursor", _FOREIGN_CURSOR)
    return tuple(_typed(value, kind) for value, kind in zip(values, kinds, strict=True))


def _typed(value: object, kind: Kind) -> object:
    if isinstance(kind, tuple):
        if isinstance(value, str) and value in kind:
            return value
    elif kind is str:
        if isinstance(value, str) and 1 <= len(value) <= MAX_ID and "\x00" not in value:
            return value
    elif kind is int:
        if type(value) is int and 0 <= value <= MAX_BIGINT:
            return value
    elif kind is datetime and isinstance(value, str) and (moment := _moment(value)) is not None:
        return moment
    raise _bad("cursor", _FOREIGN_CURSOR)


def _moment(text: str) -> datetime | None:
    """An RFC 3339 time with a zone, within the range the store keeps, as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if storable(moment) else None


def key_cursor(key: tuple[Any, ...] | None) -> str | None:
    """The cursor for a page's last key (None: that page was the last)."""
    if key is None:
        return None
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return encode_cursor(values[0] if len(values) == 1 else values)


_FOREIGN_CURSOR = "cursor is not one this server issued; use next_cursor as given"


def _cursor_key(request: web.Request) -> object:
    """What a given cursor resumes after (None: no cursor was given; `{"after": null}` is not
    one this server issues, and would otherwise read as the first page)."""
    raw = request.query.get("cursor")
    if raw is None:
        return None
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        after = decoded["after"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise _bad("cursor", _FOREIGN_CURSOR) from None
    if after is None:
        raise _bad("cursor", _FOREIGN_CURSOR)
    return after


def next_cursor(keys: list[int] | list[str], limit: int) -> str | None:
    """A cursor past the last item of a full page; None when the page was the last one."""
    return encode_cursor(keys[-1]) if len(keys) == limit else None


def one_of(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    """An optional query parameter that must be one of `allowed`."""
    value = request.query.get(name)
    if value is not None and value not in allowed:
        raise _bad(name, f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def seconds_of(request: web.Request, name: str) -> float | None:
    """A duration in seconds, 0 up to a billion; absent: None."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 10**9:  # also refuses nan and inf
        raise _bad(name, f"{name} must be a number of seconds >= 0; got {raw!r}")
    return seconds


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message, [{"field": field, "problem": message}])
