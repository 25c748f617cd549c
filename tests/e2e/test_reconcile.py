"""The IoTDA reconciler end to end: a real `tracker serve` and real `tracker reconcile`
processes, Huawei's SDK, the fake of IoTDA's API on a real port, a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import asyncpg
import pytest

from testkit.postgres import create_database, drop_database
from tests.e2e.conftest import StartTracker
from tests.e2e.test_transfer import snapshot
from tests.e2e.test_transfer import tracker as transfer
from tests.support.cli import tracker
from tests.support.fake_iotda import FakeIoTDA
from tests.support.waiting import until


@pytest.fixture
def iotda() -> Iterator[FakeIoTDA]:
    with FakeIoTDA().in_thread() as fake:
        yield fake


def settings_of(fake: FakeIoTDA, rate: float = 50.0) -> dict[str, str]:
    return {
        "TRACKER_IOTDA_ENDPOINT": fake.endpoint,
        "TRACKER_IOTDA_PROJECT_ID": fake.project_id,
        "TRACKER_IOTDA_AK": fake.ak,
        "TRACKER_IOTDA_SK": fake.sk,
        "TRACKER_IOTDA_APP_IDS": "app-1",
        "TRACKER_IOTDA_RATE": str(rate),
    }


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        found: dict[str, object] = json.load(answer)
    return found


def text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


async def test_serve_reconciles_in_the_background(
    start_tracker: StartTracker, database_url: str, iotda: FakeIoTDA
) -> None:
    devices = [f"bg-{i:02d}" for i in range(80)]
    task = iotda.create_task(devices, task_type="firmwareUpgrade", app_id="app-1")
    server = start_tracker({"TRACKER_DATABASE_URL": database_url, **settings_of(iotda)})
    operation = f"{server.url}/v1/operations/{task.task_id}"

    def waitting() -> bool:
        try:
            return get(operation)["devices"] == 80
        except OSError:
            return False  # 404 until the first read lands

    await until(waitting, "the task's 80 devices", within=30)
    task.set(devices[:20], "Success")
    task.set(devices[20:25], "Fail", error=("E42", "checksum mismatch"))

    def moved() -> bool:
        results = get(operation)["results"]
        assert isinstance(results, dict)
        return bool(results == {"SUCCESS": 20, "FAIL": 5})

    # Active tasks are read again every 30 s; the two statuses are read first on each visit.
    await until(moved, "the moves between two polls", within=60)
    shown = text(f"{server.url}/metrics")
    assert 'tracker_iotda_requests_total{call="ShowBatchTask",outcome="ok"}' in shown
    assert 'tracker_iotda_observations_total{type="iotda.subtask.observed"} 105.0' in shown
    assert "tracker_iotda_budget_rate 50.0" in shown
    used = re.search(r"^tracker_iotda_budget_used_ratio (\S+)$", shown, re.MULTILINE)
    assert used is not None
    assert 0 < float(used[1]) <= 1
    assert iotda.peak(1.0) <= 51


def test_reconcile_resumes_its_sweep_after_kill_9(database_url: str, iotda: FakeIoTDA) -> None:
    task = iotda.create_task(3000, app_id="app-1")  # 60 pages
    iotda.latency = 0.01
    env = {**os.environ, "TRACKER_DATABASE_URL": database_url, **settings_of(iotda, 200.0)}
    env["TRACKER_LOG_LEVEL"] = ""
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker", "reconcile"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        asyncio.run(until(lambda: _pages(iotda) >= 25, "25 pages read", within=60))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    before = len(iotda.calls)

    again = tracker(database_url, "reconcile", **settings_of(iotda, 200.0))

    assert again.returncode == 0, again.stderr
    markers = [
        c.query.get("marker") for c in iotda.calls[before:] if c.operation == "ShowBatchTask"
    ]
    assert markers[1] is not None  # after the head, it went on from the saved place
    assert _pages(iotda) < 60 + 25  # resumed, not started again
    per_device = asyncio.run(_subtask_events(database_url, task.task_id))
    assert len(per_device) == 3000
    assert set(per_device.values()) == {1}  # each device appended once, across the crash
    check = tracker(database_url, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def _pages(fake: FakeIoTDA) -> int:
    return sum(1 for c in fake.calls if c.operation == "ShowBatchTask" and c.status == 200)


async def _subtask_events(url: str, task_id: str) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT stream_id, count(*) FROM events WHERE event_type = 'iotda.subtask.observed' "
            "GROUP BY stream_id"
        )
        members = await conn.fetchval(
            "SELECT devices FROM operations WHERE operation_id = $1", task_id
        )
    finally:
        await conn.close()
    assert members == len(rows)
    return {r["stream_id"]: r["count"] for r in rows}


def test_reconcile_says_what_it_needs_and_what_it_would_do(
    database_url: str, iotda: FakeIoTDA
) -> None:
    iotda.create_task(["dry-1", "dry-2"], app_id="app-1")

    half = tracker(database_url, "reconcile", TRACKER_IOTDA_ENDPOINT=iotda.endpoint)
    unset = tracker(database_url, "reconcile")
    dry = tracker(database_url, "reconcile", "--dry-run", **settings_of(iotda))
    secret = "not-the-secret-key-0123456789"
    wrong = tracker(database_url, "reconcile", **{**settings_of(iotda), "TRACKER_IOTDA_SK": secret})

    assert half.returncode == 2
    assert "TRACKER_IOTDA_PROJECT_ID, TRACKER_IOTDA_AK, TRACKER_IOTDA_SK" in half.stderr
    assert unset.returncode == 2
    assert "set TRACKER_IOTDA_ENDPOINT" in unset.stderr
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("would append iotda.subtask.observed") == 2
    assert "would append 1 iotda.batchtask.observed, 2 iotda.subtask.observed" in dry.stdout
    assert tracker(database_url, "export").stdout == ""  # the dry run appended nothing
    assert wrong.returncode == 1
    assert "IoTDA refused the credentials" in wrong.stderr
    assert secret not in wrong.stderr + wrong.stdout
    assert "Traceback" not in wrong.stderr


def test_observations_survive_export_and_import(
    database_url: str, postgres_server: str, iotda: FakeIoTDA
) -> None:
    task = iotda.create_task(120, task_type="firmwareUpgrade", app_id="app-1")
    task.set_range(0, 30, "Fail", error=("E7", "no space"))
    assert tracker(database_url, "reconcile", **settings_of(iotda)).returncode == 0
    exported = transfer(database_url, "export")
    target = create_database(postgres_server)
    try:
        imported = transfer(target, "import", "-", stdin=exported.stdout)
        assert imported.returncode == 0, imported.stderr
        assert b"121 events appended" in imported.stdout
        assert asyncio.run(snapshot(target)) == asyncio.run(snapshot(database_url))
    finally:
        drop_database(target)
