"""Running the `tracker` command as a person or a script does: a real process, a real database."""

from __future__ import annotations

import os
import subprocess
import sys


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
