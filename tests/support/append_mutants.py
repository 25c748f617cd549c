"""`python -m tests.support.append_mutants`: break the parallel append's rule six ways and check
that the tests catch each (docs/architecture.md, "Appends side by side").

Each mutant is applied to a copy of this checkout (the append's and the horizon's definitions
in sql/definitions/, or tracker/store/events.py), and the follower and hash-chain tests run
against it with TRACKER_TEST_DATABASE_URL (required: a server the tests may create databases
on). A mutant that every test passes is a gap in the tests; the command exits 1 if there is one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPEND = "sql/definitions/12_tracker_append_kept.sql"
HORIZON = "sql/definitions/14_tracker_horizon.sql"
EVENTS = "tracker/store/events.py"
TESTS = ("tests/integration/test_log_store.py", "tests/integration/test_hash_chain.py")

MARKER = (
    "    PERFORM pg_catalog.pg_advisory_xact_lock_shared((29300::bigint << 48) | drawn);"
    "  -- MARKER\n"
)
DRAW_START, DRAW_END = "    positions := ARRAY(", "        ORDER BY 1);\n"


def _marker_after_draw(text: str) -> str:
    start = text.index(DRAW_START)
    end = text.index(DRAW_END, start) + len(DRAW_END)
    draw = text[start:end]
    return text.replace(MARKER, "").replace(draw, draw + MARKER)


def _unsorted_stream_locks(text: str) -> str:
    return text.replace(
        "    ORDER BY pg_catalog.hashtext(s.st), pg_catalog.hashtext(s.sid);\n", ";\n"
    ).replace("SELECT DISTINCT st, sid FROM", "SELECT st, sid FROM")


MUTANTS: dict[str, tuple[str, Callable[[str], str]]] = {
    "marker after the draw": (APPEND, _marker_after_draw),
    "no stream locks": (
        APPEND,
        lambda t: t.replace(
            "PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext(s.st), "
            "pg_catalog.hashtext(s.sid))",
            "PERFORM pg_catalog.hashtext(s.st), pg_catalog.hashtext(s.sid)",
        ),
    ),
    "stream locks unsorted": (APPEND, _unsorted_stream_locks),
    "marker not below the draw": (
        APPEND,
        lambda t: t.replace("| drawn);  -- MARKER", "| (drawn + 1));  -- MARKER"),
    ),
    "horizon ignores markers": (
        HORIZON,
        lambda t: t.replace("RETURN least(drawn, in_flight);", "RETURN drawn;"),
    ),
    "page not bounded by the horizon": (
        EVENTS,
        lambda t: t.replace("    last = await horizon.read(db)\n", "    last = 2**62\n"),
    ),
}


def _run_tests(copy: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *TESTS]
    env = {**os.environ, "PYTHONPATH": str(copy)}
    return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, check=False)


def main() -> int:
    if not os.environ.get("TRACKER_TEST_DATABASE_URL"):
        print("set TRACKER_TEST_DATABASE_URL to a PostgreSQL server for the tests")
        return 2
    survivors = 0
    with tempfile.TemporaryDirectory(prefix="tracker-mutants-") as tmp:
        copy = Path(tmp) / "tracker"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "*.pyc"))
        for name, (path, mutate) in MUTANTS.items():
            target = copy / path
            original = target.read_text()
            mutated = mutate(original)
            if mutated == original:
                print(f"{name}: the mutation no longer applies (the code moved); update it")
                survivors += 1
                continue
            target.write_text(mutated)
            try:
                ran = _run_tests(copy)
            finally:
                target.write_text(original)
            failed = [line for line in ran.stdout.splitlines() if line.startswith("FAILED")]
            caught = ran.returncode != 0
            survivors += not caught
            print(f"{name}: {'caught' if caught else 'SURVIVED'} {failed[:1]}", flush=True)
        ran = _run_tests(copy)
        print(f"unmutated: {'passes' if ran.returncode == 0 else 'FAILS'}")
    return 1 if survivors or ran.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
