"""Keyset pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` out; cursors are opaque.

A route's `Cursor` field (http/parameters.py) decodes the text; here it is typed against what
the listing's keyset holds, and written for the next page."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import orjson

from tracker.domain.instants import storable
from tracker.domain.notifications import MAX_ID
from tracker.http.parameters import FOREIGN_CURSOR, MAX_BIGINT, invalid_parameter


def encode_cursor(after: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


def cursor_after(cursor: object) -> int | None:
    """The log position a cursor resumes after, or None when no cursor was given."""
    if cursor is None:
        return None
    if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor <= MAX_BIGINT:
        raise invalid_parameter("cursor", FOREIGN_CURSOR)
    return cursor


def resume_after(cursor: object, after: int) -> int:
    """Where a log-ordered list resumes: the cursor's position, else `?after=`."""
    position = cursor_after(cursor)
    return after if position is None else position


# What one value of a keyset cursor may be: `str` (an id, as notifications.py bounds ids),
# `int` (a position), `datetime` (a stored time, in instants.py's range), or one of a few values.
Kind = type | tuple[str, ...]


def cursor_key(cursor: object, kinds: tuple[Kind, ...]) -> tuple[Any, ...] | None:
    """The key a cursor resumes after, typed as `kinds`, or None when no cursor was given.

    A cursor is decoded from the client's text, so every value is checked against what the
    listing's keyset holds before it reaches a query: a time outside the range the store keeps
    would overflow in the driver (a 500), an id no notification could carry matches nothing.
    A cursor of another list's shape is refused like a forged one."""
    if cursor is None:
        return None
    # As `key_cursor` writes them: one value bare, several as a list of exactly that many.
    values = cursor if len(kinds) > 1 and isinstance(cursor, list) else [cursor]
    if len(values) != len(kinds):
        raise invalid_parameter("cursor", FOREIGN_CURSOR)
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
    raise invalid_parameter("cursor", FOREIGN_CURSOR)


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


def next_cursor(keys: list[int] | list[str], limit: int) -> str | None:
    """A cursor past the last item of a full page; None when the page was the last one."""
    return encode_cursor(keys[-1]) if len(keys) == limit else None
