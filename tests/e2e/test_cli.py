"""The read commands as a person or a script uses them: real processes, real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.http import post


def tracker(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env={**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def seeded(start_tracker, database_url, examples):
    server = start_tracker({"TRACKER_DATABASE_URL": database_url})
    for raw in examples.values():
        assert post(server.url, raw).status == 200
    return database_url


def test_device_as_a_table_and_as_the_api_document(seeded, examples):
    shown = tracker(seeded, "device", "d-7f3a9c01", "--history")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("device d-7f3a9c01  app app-4b21")
    assert lines[1].split() == ["TRACK", "STATE", "SINCE", "OPERATION", "VERSION", "LAST", "RESULT"]
    assert lines[2].split()[:2] == ["software", "downloading"]
    assert "POSITION" in shown.stdout
    assert shown.stderr == ""  # no log chatter for people

    as_json = tracker(seeded, "device", "d-7f3a9c01", "--json")
    document = json.loads(as_json.stdout)
    assert set(document) == {
        "device_id",
        "app_id",
        "software",
        "firmware",
        "last_position",
        "updated_at",
    }
    assert document["software"]["version"] == "1.5"


def test_task_operation_and_devices(seeded):
    task = tracker(seeded, "task", "1a7ffc5c-d89c-44dd-8265", "--history", "--json")
    assert task.returncode == 0
    assert json.loads(task.stdout)["task"]["status"] == "Waitting"
    assert len(json.loads(task.stdout)["transitions"]) == 1
    operation = tracker(seeded, "operation", "op-20261121-01", "--json")
    assert json.loads(operation.stdout)["results"] == {"SUCCESS": 1, "FAIL": 0}
    listing = tracker(seeded, "devices", "--state", "downloading")
    assert listing.returncode == 0
    assert [line.split()[0] for line in listing.stdout.splitlines()] == ["DEVICE", "d-7f3a9c01"]
    none = tracker(seeded, "devices", "--stuck-for", "1h")
    assert none.stdout.splitlines() == [none.stdout.splitlines()[0]]  # headers only


@pytest.mark.parametrize(
    "args",
    [("device", "nope"), ("task", "nope"), ("operation", "nope"), ("device", "nope", "--json")],
)
def test_not_found_is_exit_3_with_a_message(seeded, args):
    done = tracker(seeded, *args)
    assert done.returncode == 3
    assert "nope" in done.stderr
    assert done.stdout == ""


def test_usage_errors_are_exit_2_and_help_is_there(seeded):
    assert tracker(seeded, "devices", "--stuck-for", "soon").returncode == 2
    assert tracker(seeded, "devices", "--state", "flying").returncode == 2
    for command in ["serve", "migrate", "replay", "device", "task", "operation", "devices"]:
        shown = tracker(seeded, command, "--help")
        assert shown.returncode == 0
        assert "exit codes" in shown.stdout


def test_an_unreachable_database_is_exit_4():
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "device", "x"],
        env={
            **os.environ,
            "TRACKER_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x",
            "TRACKER_START_TIMEOUT": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 4
    assert "did not answer" in done.stderr
