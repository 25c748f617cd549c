"""Running the `tracker` command as a person or a script does: a real process, a real database.

`in_process` runs the same `main` without starting an interpreter (about 0.4 s of CPU each): for
checks of what a command shows, repeated over many inputs, beside a few real runs of the same.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from unittest import mock

from tracker.cli import main


def tracker(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`tracker ARGS` against the database at `url`, without log chatter unless `env` asks."""
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env={**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": "", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`tracker ARGS` run by this process's own `main`, one at a time (it takes sys.stdout):
    the exit code, and what it printed, as `tracker` gives them."""
    out, err = io.StringIO(), io.StringIO()
    environment = {"TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": ""}
    with (
        mock.patch.dict(os.environ, environment),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors and --help
            code = exit_.code if isinstance(exit_.code, int) else 1
    return subprocess.CompletedProcess(["tracker", *args], code, out.getvalue(), err.getvalue())
