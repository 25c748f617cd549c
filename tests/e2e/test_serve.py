"""`tracker serve` as a real process on a real port: what the platform and an operator see."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from testkit.postgres import EmbeddedPostgres
from tests.e2e.conftest import StartTracker
from tests.e2e.http import get, post
from tracker.config import EVERYWHERE


def test_each_example_lands_verbatim(
    start_tracker: StartTracker, database_url: str, examples: dict[str, bytes]
) -> None:
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url})
    for stem, raw in examples.items():
        answer = post(tracker.url, raw)
        assert answer.status == 200, (stem, answer.body)
        position = answer.json()["position"]
        assert get(tracker.url, f"/v1/events/{position}/raw").body == raw, stem
    items = get(tracker.url, "/v1/events").json()["items"]
    assert [item["payload"] for item in items] == [json.loads(raw) for raw in examples.values()]
    assert [item["event_type"] for item in items] == [
        "batchtask.update",
        "fwUpgradeResultNotify",
        "fwUpgradeStateChangeNotify",
        "swUpgradeResultNotify",
        "swUpgradeStateChangeNotify",
    ]


def test_503_while_the_database_is_down_then_200_without_a_restart(
    start_tracker: StartTracker, stoppable_postgres: EmbeddedPostgres, examples: dict[str, bytes]
) -> None:
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    tracker = start_tracker({"TRACKER_DATABASE_URL": stoppable_postgres.url})
    acked = [post(tracker.url, raw).json()["position"]]

    stoppable_postgres.stop("fast")
    for _ in range(3):
        answer = post(tracker.url, raw)
        assert answer.status == 503, answer.body
        assert answer.seconds < 10
        assert answer.json()["error"]["code"] == "database_unavailable"
    assert get(tracker.url, "/readyz").status == 503
    assert get(tracker.url, "/healthz").status == 200
    assert post(tracker.url, b"not json").status == 503  # its refusal cannot be kept either

    stoppable_postgres.start()
    deadline = time.monotonic() + 10
    while (answer := post(tracker.url, raw)).status != 200:
        assert answer.status == 503
        assert time.monotonic() < deadline, "did not recover within 10 s of the database's return"
        time.sleep(0.2)
    acked.append(answer.json()["position"])
    assert get(tracker.url, "/readyz").status == 200
    logged = [item["position"] for item in get(tracker.url, "/v1/events").json()["items"]]
    assert set(acked) <= set(logged)
    assert tracker.process is not None
    assert tracker.process.poll() is None


def test_the_embedded_default_keeps_data_across_restarts(
    start_tracker: StartTracker, tmp_path: Path, examples: dict[str, bytes]
) -> None:
    env = {"TRACKER_DATABASE_URL": "", "TRACKER_DATA_DIR": str(tmp_path / "data")}
    first = start_tracker(env)
    assert "embedded PostgreSQL" in first.log().splitlines()[0]
    position = post(first.url, examples["iotda-batchtask-update"]).json()["position"]

    # Another command beside the server joins the same embedded PostgreSQL and leaves it running.
    migrate = subprocess.run(
        [sys.executable, "-m", "tracker", "migrate"],
        env={**first.env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert str(tmp_path / "data" / "pgdata") in migrate.stderr
    again = post(first.url, examples["iotda-batchtask-update"])
    assert again.status == 200

    assert first.stop() == 0
    second = start_tracker(env, port=first.port)
    items = get(second.url, "/v1/events").json()["items"]
    assert [item["position"] for item in items] == [position, again.json()["position"]]
    assert get(second.url, f"/v1/events/{position}/raw").body == examples["iotda-batchtask-update"]


def test_tokens_never_reach_the_log(
    start_tracker: StartTracker, database_url: str, examples: dict[str, bytes]
) -> None:
    ingest, read = "INGEST-TOKEN-abc123", "READ-TOKEN-def456"
    tracker = start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": ingest,
            "TRACKER_READ_TOKEN": read,
            "TRACKER_LOG_LEVEL": "DEBUG",
        }
    )
    raw = examples["iotda-batchtask-update"]
    assert post(tracker.url, raw, path=f"/v1/notifications?token={ingest}").status == 200
    assert post(tracker.url, raw, headers={"Authorization": f"Bearer {ingest}"}).status == 200
    assert post(tracker.url, raw, path="/v1/notifications?token=guess").status == 401
    assert get(tracker.url, f"/v1/events?token={read}").status == 200
    assert tracker.stop() == 0
    log = tracker.log()
    assert "/v1/notifications?token=***" in log
    assert ingest not in log
    assert read not in log
    assert "guess" not in log


def test_an_open_ingest_endpoint_is_warned_about(
    start_tracker: StartTracker, database_url: str
) -> None:
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url, "TRACKER_INGEST_TOKEN": ""})
    assert "TRACKER_INGEST_TOKEN is unset" in tracker.log()


OPEN = {"TRACKER_INGEST_TOKEN": "", "TRACKER_READ_TOKEN": ""}


def serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    return subprocess.run(
        [sys.executable, "-m", "tracker", "serve", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (("--host", EVERYWHERE), {}),
        ((), {"TRACKER_HOST": EVERYWHERE, "TRACKER_INGEST_TOKEN": "i" * 16}),
        (("--host", "::"), {"TRACKER_READ_TOKEN": "r" * 16}),
    ],
)
def test_serve_refuses_to_listen_open_beyond_loopback(
    args: tuple[str, ...], env: dict[str, str], tmp_path: Path
) -> None:
    done = serve(*args, "--port", "0", "--data-dir", str(tmp_path), **env)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("tracker serve: refusing to listen on ")
    assert "--insecure-open" in line
    assert not (tmp_path / "pgdata").exists()  # refused before anything started


def test_without_tokens_serve_listens_on_loopback_only(
    start_tracker: StartTracker, database_url: str
) -> None:
    tracker = start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": "",
            "TRACKER_READ_TOKEN": "",
        },
        args=("--host", ""),  # as if none was given: the default decides
    )
    assert f"listening on http://127.0.0.1:{tracker.port}" in tracker.log()
    assert "anything on this machine can post notifications" in tracker.log()


def test_insecure_open_is_said_on_purpose_and_warned_about(
    start_tracker: StartTracker, database_url: str
) -> None:
    tracker = start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": "",
            "TRACKER_READ_TOKEN": "",
        },
        args=("--host", EVERYWHERE, "--insecure-open"),
    )
    assert f"listening on http://{EVERYWHERE}:{tracker.port}" in tracker.log()
    assert "ANYONE who can reach this port (--insecure-open) can post" in tracker.log()


def test_serve_says_how_durable_the_database_is(
    start_tracker: StartTracker, database_url: str
) -> None:
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url})
    assert "database durability: fsync=on, synchronous_commit=on" in tracker.log()


async def _set_on_database(url: str, setting: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        name = await conn.fetchval("SELECT current_database()")
        await conn.execute(f'ALTER DATABASE "{name}" SET {setting}')
    finally:
        await conn.close()


def test_serve_refuses_a_database_that_would_lose_acknowledged_commits(
    start_tracker: StartTracker, database_url: str
) -> None:
    asyncio.run(_set_on_database(database_url, "synchronous_commit = off"))
    done = serve("--host", "127.0.0.1", "--port", "0", TRACKER_DATABASE_URL=database_url, **OPEN)
    assert done.returncode == 2, done.stderr
    refusals = [line for line in done.stderr.splitlines() if line.startswith("tracker serve:")]
    expected = (
        "tracker serve: the database would lose commits already answered 200 if it crashed "
        "(synchronous_commit=off): refusing to serve; fix it, or pass --allow-unsafe-durability "
        "(TRACKER_ALLOW_UNSAFE_DURABILITY=1) for a test bench"
    )
    assert refusals == [expected]
    assert "Traceback" not in done.stderr
    tracker = start_tracker(
        {"TRACKER_DATABASE_URL": database_url}, args=("--allow-unsafe-durability",)
    )
    assert "synchronous_commit=off, full_page_writes=on; UNSAFE" in tracker.log()


def test_serve_gives_up_clearly_when_the_database_never_answers(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TRACKER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "TRACKER_START_TIMEOUT": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4  # database unavailable
    assert "the database did not answer within 1.0s" in done.stderr
    assert "Traceback" not in done.stderr


def test_workers_share_one_port_and_stop_together(
    start_tracker: StartTracker, database_url: str, examples: dict[str, bytes]
) -> None:
    tracker = start_tracker({"TRACKER_DATABASE_URL": database_url}, args=("--workers", "2"))
    raw = examples["oceanconnect-swUpgradeStateChangeNotify"]
    assert all(post(tracker.url, raw).status == 200 for _ in range(20))
    deadline = time.monotonic() + 10
    while tracker.log().count("listening on") < 2:
        assert time.monotonic() < deadline, tracker.log()
        time.sleep(0.1)
    pids = {
        line.rsplit("pid ", 1)[1].rstrip(")")
        for line in tracker.log().splitlines()
        if "listening on" in line
    }
    assert len(pids) == 2
    assert len(get(tracker.url, "/v1/devices/d-7f3a9c01/transitions").json()["items"]) == 1
    # Whichever worker answers, /metrics adds up every worker's counters.
    for _ in range(4):
        text = get(tracker.url, "/metrics").body.decode()
        assert "tracker_notifications_received_total 20.0" in text
    assert tracker.stop() == 0
    assert "workers stopped: exit codes [0, 0]" in tracker.log()


def test_workers_log_at_the_level_asked_for_by_flag(
    start_tracker: StartTracker, database_url: str
) -> None:
    """`serve --workers 2 --log-level DEBUG` left its workers at INFO (issue 22): the flag now
    reaches every worker's environment, which is all a worker reads its settings from."""
    tracker = start_tracker(
        {"TRACKER_DATABASE_URL": database_url}, args=("--workers", "2", "--log-level", "debug")
    )
    deadline = time.monotonic() + 10
    while tracker.log().count("listening on") < 2:
        assert time.monotonic() < deadline, tracker.log()
        time.sleep(0.1)
    pids = [
        line.split("(pid ", 1)[1].split(")", 1)[0]
        for line in tracker.log().splitlines()
        if "listening on" in line
    ]
    levels = {
        pid: dict(
            entry.split("=", 1)
            for entry in Path(f"/proc/{pid}/environ").read_text().split("\0")
            if "=" in entry
        ).get("TRACKER_LOG_LEVEL")
        for pid in pids
    }
    assert levels == dict.fromkeys(pids, "DEBUG")
    assert tracker.stop() == 0
