"""Aligned text tables for people at a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

EMPTY = "-"


def when(moment: datetime | None) -> str:
    return EMPTY if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def cell(value: object) -> str:
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, datetime):
        return when(value)
    return str(value)


def render(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, *cells]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )
