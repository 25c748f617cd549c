"""Aligned text tables for people at a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

EMPTY = "-"


def when(moment: datetime | None) -> str:
    return EMPTY if moment is None else f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}Z"


def shown(text: str) -> str:
    """Sender-chosen text made safe for a terminal: control and format characters (newlines,
    escape sequences, right-to-left overrides) appear escaped instead of acting on the screen."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def ident(text: str) -> str:
    """An id for people: as sent (control characters escaped, as `shown` does) and, when it
    is not ASCII, its escaped form beside it. `café [caf\\u00e9]` and `café [cafe\\u0301]`
    are two ids that look alike: they are compared exactly as sent, never normalised, and
    this is how a reader tells them apart."""
    if text.isascii():
        return shown(text)
    return f"{shown(text)} [{escaped(text)}]"


def escaped(text: str) -> str:
    """Every character outside printable ASCII (and the backslash) as a \\u or \\U escape."""
    return "".join(c if " " <= c <= "~" and c != "\\" else _escape(c) for c in text)


def _escape(c: str) -> str:
    point = ord(c)
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


def cell(value: object) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, datetime):
        return when(value)
    return shown(str(value))


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
