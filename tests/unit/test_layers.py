"""The domain stays pure: no module in it may import I/O libraries, directly or transitively."""

import subprocess
import sys

PROBE = """
import importlib, pkgutil, sys
import tracker.domain
modules = [m.name for m in pkgutil.iter_modules(tracker.domain.__path__, "tracker.domain.")]
for name in modules:
    importlib.import_module(name)
io = {"asyncpg", "aiohttp", "pgserver", "psycopg", "uvloop", "yarl", "multidict"}
adapters = ("tracker.store", "tracker.http")
bad = sorted(m for m in sys.modules if m.split(".")[0] in io or m.startswith(adapters))
print(len(modules), ",".join(bad))
"""


def test_domain_imports_no_io() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    count, bad = (
        out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (out.stdout.strip(), "")
    )
    assert int(count) >= 7  # every domain module was imported
    assert bad == ""
