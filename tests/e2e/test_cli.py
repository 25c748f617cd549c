"""The read commands as a person or a script uses them: real processes, real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.conftest import StartTracker
from tests.e2e.http import post
from tests.support.cli import tracker


@pytest.fixture
def seeded(start_tracker: StartTracker, database_url: str, examples: dict[str, bytes]) -> str:
    server = start_tracker({"TRACKER_DATABASE_URL": database_url})
    for raw in examples.values():
        assert post(server.url, raw).status == 200
    return database_url


def test_device_as_a_table_and_as_the_api_document(seeded: str, examples: dict[str, bytes]) -> None:
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
        "tasks",
        "last_position",
        "updated_at",
    }
    assert document["software"]["version"] == "1.5"
    assert document["tasks"] == []  # no IoTDA task has named it


def test_task_operation_and_devices(seeded: str) -> None:
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


def test_operations_their_rollups_and_their_devices(seeded: str) -> None:
    listed = tracker(seeded, "operations")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:5] == ["OPERATION", "TRACK", "APP", "DEVICES", "PLATFORM"]
    # The examples are posted in file order: the software ones (op-…-01) last.
    assert [line.split()[0] for line in lines[1:]] == ["op-20261121-01", "op-20261121-02"]
    as_json = json.loads(tracker(seeded, "operations", "--track", "software", "--json").stdout)
    assert [o["operation_id"] for o in as_json] == ["op-20261121-01"]

    rollup = tracker(seeded, "operation", "op-20261121-01")
    assert rollup.returncode == 0, rollup.stderr
    assert rollup.stdout.startswith("operation op-20261121-01 (software, app app-4b21): 1 devices")
    assert rollup.stdout.splitlines()[1] == "platform OceanConnect"
    assert "TARGET VERSION" in rollup.stdout

    members = tracker(seeded, "operation", "op-20261121-01", "--devices")
    assert members.returncode == 0, members.stderr
    assert [line.split()[:3] for line in members.stdout.splitlines()] == [
        ["DEVICE", "TRACK", "STATE"],
        ["d-7f3a9c01", "software", "downloading"],
    ]
    failed = tracker(seeded, "operation", "op-20261121-01", "--devices", "--result", "FAIL")
    assert failed.stdout.splitlines()[1:] == []
    as_json = json.loads(
        tracker(seeded, "operation", "op-20261121-01", "--devices", "--json").stdout
    )
    assert [(m["device_id"], m["result"]) for m in as_json] == [("d-7f3a9c01", "SUCCESS")]


@pytest.mark.parametrize(
    "args",
    [
        ("device", "nope"),
        ("task", "nope"),
        ("operation", "nope"),
        ("operation", "nope", "--devices"),
        ("device", "nope", "--json"),
    ],
)
def test_not_found_is_exit_3_with_a_message(seeded: str, args: tuple[str, ...]) -> None:
    done = tracker(seeded, *args)
    assert done.returncode == 3
    assert "nope" in done.stderr
    assert done.stdout == ""


def test_usage_errors_are_exit_2_and_help_is_there(seeded: str) -> None:
    assert tracker(seeded, "devices", "--stuck-for", "soon").returncode == 2
    assert tracker(seeded, "devices", "--state", "flying").returncode == 2
    commands = [
        "serve",
        "migrate",
        "replay",
        "device",
        "task",
        "operation",
        "operations",
        "devices",
    ]
    for command in commands:
        shown = tracker(seeded, command, "--help")
        assert shown.returncode == 0
        assert "exit codes" in shown.stdout


def test_an_unreachable_database_is_exit_4() -> None:
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
