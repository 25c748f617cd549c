"""A row of the scale table and how its cells are written."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    measurement: str
    target: str
    small: str
    large: str
    growth: str
    met: str


def met(ok: bool, why: str = "") -> str:
    return "yes" if ok else no(why)


def no(why: str = "") -> str:
    return f"**NO**{f' ({why})' if why else ''}"


def ratio(small: float | None, large: float | None) -> str:
    if not small or large is None or small != small or large != large:  # noqa: PLR0124 - nan
        return "-"
    return f"{large / small:.2f}x"


def ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
