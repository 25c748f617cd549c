"""What the disk gives a durable commit: `pg_test_fsync`'s figure for the server's own
`wal_sync_method`, one 8 kB write then a sync, as PostgreSQL's WAL flush does.

Every durable append waits for at least one such flush; group commit shares one among many
deliveries. The figure is the floor under the single-INSERT ceiling (one flush per row), and
says how many flushes a second the machine has to share out.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from importlib.util import find_spec
from pathlib import Path

SECONDS = 2  # per method tested (pg_test_fsync -s)


def binary() -> str | None:
    """pg_test_fsync beside the embedded server's binaries, on PATH, or in Debian's layout."""
    spec = find_spec("pgserver")
    places = []
    if spec and spec.origin:
        places.append(str(Path(spec.origin).parent / "pginstall" / "bin" / "pg_test_fsync"))
    places += [shutil.which("pg_test_fsync") or ""]
    places += sorted(
        map(str, Path("/usr/lib/postgresql").glob("*/bin/pg_test_fsync")), reverse=True
    )
    return next((p for p in places if p and Path(p).is_file()), None)


def ops_per_second(method: str, where: Path | None = None) -> float | None:
    """pg_test_fsync's ops/sec for `method` writing one 8 kB block, in a file under `where`
    (the same file system as the data, ideally); None if it cannot be measured here."""
    found = binary()
    if found is None:
        return None
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        done = subprocess.run(
            [found, "-s", str(SECONDS), "-f", str(Path(tmp) / "pg_test_fsync.out")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    return parse(done.stdout, method)


def parse(output: str, method: str) -> float | None:
    """The figure for `method` in pg_test_fsync's first table (one 8 kB write per sync)."""
    section = output.split("Compare file sync methods using one 8kB write", 1)[-1]
    section = section.split("Compare file sync methods using two", 1)[0]
    match = re.search(rf"^\s*{re.escape(method)}\s+([\d.,]+) ops/sec", section, re.MULTILINE)
    return float(match[1].replace(",", "")) if match else None
