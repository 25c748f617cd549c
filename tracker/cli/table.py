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
