"""The domain stays pure: it must not import I/O libraries, directly or through another module."""

import subprocess
import sys


def test_domain_imports_no_io():
    probe = (
        "import sys, tracker.domain.delivery, tracker.domain.notifications;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'asyncpg', 'aiohttp', 'pgserver', 'aiohttp', 'psycopg', 'uvloop'} or "
        "m.startswith(('tracker.store', 'tracker.http')));"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
