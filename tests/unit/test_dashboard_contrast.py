"""The dashboard's colours meet WCAG 2.1 AA on its backgrounds: text 4.5:1, the state bars and
marks (non-text) 3:1. Read from the stylesheet itself, so a colour changed there is checked."""

from __future__ import annotations

import re
from importlib import resources

import pytest

CSS = resources.files("tracker.dashboard").joinpath("dashboard.css").read_text()
COLOURS = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS))
TEXT = ("text", "muted", "link", "success", "fail")
MARKS = ("idle", "downloading", "downloaded", "updating", "success", "fail", "focus")
BACKGROUNDS = ("#ffffff", COLOURS["panel"])


def luminance(colour: str) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("name", TEXT)
@pytest.mark.parametrize("background", BACKGROUNDS)
def test_text_colours_read_at_aa(name: str, background: str) -> None:
    assert contrast(COLOURS[name], background) >= 4.5


@pytest.mark.parametrize("name", MARKS)
def test_bars_and_marks_stand_out_at_aa(name: str) -> None:
    assert contrast(COLOURS[name], "#ffffff") >= 3.0


def test_the_formula_is_wcags() -> None:
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#777777", "#ffffff"), 2) == 4.48
