"""System tools some tests drive (chromium, wrk). On a newcomer's machine without one, its tests
skip with one line naming the tool and how to install it; under CI (`CI` set, as `.ci/run`
sets it after installing them) a missing tool fails them instead, so CI never skips a test."""

from __future__ import annotations

import os
import shutil

import pytest


def required(*names: str, install: str) -> str:
    """The path of the first of `names` on PATH; else skip (fail under CI) saying `install`."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{names[0]} is missing: {install}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: every test must run)")
    pytest.skip(message)
