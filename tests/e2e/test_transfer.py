"""Export, then import into an empty database: the same log, byte for byte, same projections."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from testkit.fleet import rollout
from testkit.postgres import create_database, drop_database
from tests.e2e.conftest import StartTracker
from tests.e2e.http import post
from tracker.store.rows import ALL_TABLES


def tracker(url: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env={**os.environ, "TRACKER_DATABASE_URL": url},
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    conn = await asyncpg.connect(url)
    try:
        tables = {"events": await conn.fetch("SELECT * FROM events ORDER BY position")}
        for table in ALL_TABLES:
            order = ", ".join(table.key)
            tables[table.name] = await conn.fetch(f"SELECT * FROM {table.name} ORDER BY {order}")  # noqa: S608
        return {name: [dict(row) for row in rows] for name, rows in tables.items()}
    finally:
        await conn.close()


def test_export_then_import_gives_the_same_log_and_projections(
    start_tracker: StartTracker,
    database_url: str,
    postgres_server: str,
    examples: dict[str, bytes],
    tmp_path: Path,
) -> None:
    server = start_tracker({"TRACKER_DATABASE_URL": database_url})
    for raw in examples.values():
        assert post(server.url, raw).status == 200
    assert post(server.url, b'{"notifyType": "deviceDataChanged", "deviceId": "x"}').status == 200
    for script in rollout("transfer", devices=30, tasks=5):
        for body in script.bodies:
            assert post(server.url, body).status == 200

    exported = tracker(database_url, "export")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert len(lines) == len({json.loads(line)["position"] for line in lines})
    assert json.loads(lines[0])["body"].encode() == next(iter(examples.values()))
    (tmp_path / "log.jsonl").write_bytes(exported.stdout)

    empty = create_database(postgres_server)
    try:
        imported = tracker(empty, "import", str(tmp_path / "log.jsonl"))
        assert imported.returncode == 0, imported.stderr
        assert f"{len(lines):,} events appended" in imported.stdout.decode()
        original, copy = asyncio.run(snapshot(database_url)), asyncio.run(snapshot(empty))
        assert copy == original
        assert tracker(empty, "replay", "--check").returncode == 0
    finally:
        drop_database(empty)


def test_export_after_a_position(
    start_tracker: StartTracker, database_url: str, examples: dict[str, bytes]
) -> None:
    server = start_tracker({"TRACKER_DATABASE_URL": database_url})
    positions = [post(server.url, raw).json()["position"] for raw in examples.values()]
    exported = tracker(database_url, "export", "--after", str(positions[2]))
    assert [json.loads(line)["position"] for line in exported.stdout.splitlines()] == positions[3:]


def test_import_takes_bare_notifications_and_reports_refusals(
    database_url: str, examples: dict[str, bytes]
) -> None:
    bare = b"\n".join(raw.replace(b"\n", b"") for raw in examples.values())
    stdin = bare + b"\n\n" + b'{"notifyType": "swUpgradeStateChangeNotify"}\n' + b"not json\n"
    done = tracker(database_url, "import", "-", stdin=stdin)
    assert done.returncode == 1
    out, err = done.stdout.decode(), done.stderr.decode()
    assert "5 events appended" in out
    assert "2 lines refused" in out
    assert "line 7: schema_violation: deviceId: Field required" in err
    assert "line 8: invalid_json" in err
    shown = subprocess.run(
        [sys.executable, "-m", "tracker", "device", "d-7f3a9c01", "--json"],
        env={**os.environ, "TRACKER_DATABASE_URL": database_url},
        capture_output=True,
        check=True,
    )
    assert json.loads(shown.stdout)["firmware"]["state"] == "downloading"
