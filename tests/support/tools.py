"""System tools some tests drive (chromium, wrk, RabbitMQ). On a newcomer's machine without one,
its tests skip with one line naming the tool and how to install it; under CI (`CI` set, as
`.ci/run` sets it after installing them) a missing tool fails them instead, so CI never skips a
test."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def required(*names: str, install: str) -> str:
    """The path of the first of `names` on PATH; else skip (fail under CI) saying `install`."""
    found = next(filter(None, map(shutil.which, names)), None)
    if found is None:
        missing(f"{names[0]} is missing: {install}")
    return found


def missing(message: str) -> NoReturn:
    """Skip this test saying `message` (what is missing and how to get it); fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set: every test must run)")
    pytest.skip(message)
