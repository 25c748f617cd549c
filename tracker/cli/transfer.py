"""`tracker export` and `tracker import` (next)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:  # noqa: ANN401
    del commands, common
