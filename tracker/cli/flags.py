"""The flags that set settings, built from the settings' own declarations (config.py `Flag`):
a flag cannot be added without its setting, nor parsed into anything else."""

from __future__ import annotations

import argparse
from typing import Literal

from tracker.config import Settings, flags, kind_of


def add_setting_flags(parser: argparse.ArgumentParser, commands: Literal["every", "serve"]) -> None:
    """The flags of the settings declared for `commands`, each defaulting to None (not given)."""
    for spec, flag in flags():
        if flag.commands != commands:
            continue
        name = f"--{spec.name.replace('_', '-')}"
        kind = kind_of(spec)
        if kind is bool:
            parser.add_argument(name, action="store_true", default=None, help=flag.help)
        else:
            parser.add_argument(name, type=kind, metavar=flag.metavar, help=flag.help)


def settings_of(args: argparse.Namespace) -> Settings:
    """The environment's settings over the command's own defaults, then the flags given."""
    given = {spec.name: getattr(args, spec.name, None) for spec, _ in flags()}
    return Settings.from_env(log_level=args.log_default).with_overrides(**given)
