"""A simulated fleet rollout: scripted deliveries per device and task, with what they must yield
(the tests check it), and the endless interleaved mix of such rollouts the benchmark posts."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

CYCLE = ["downloading", "downloaded", "updating", "idle"]
STEPS = {"idle": "0", "downloading": "1", "downloaded": "2", "updating": "3"}
T0 = datetime(2026, 11, 21, tzinfo=UTC)


@dataclass
class Script:
    """One stream's deliveries, to be sent in order, and the state they must leave behind."""

    stream_id: str
    bodies: list[bytes] = field(default_factory=list)
    final: dict[str, str] = field(default_factory=dict)  # track -> state, or "status" -> status
    transitions: int = 0


def device_script(prefix: str, number: int, rng: random.Random) -> Script:
    device = f"{prefix}-dev-{number:04d}"
    script = Script(device)
    ids = {"deviceId": device, "appId": "app-e2e", "subOperationId": "sub-1"}
    for track in ("software", "firmware"):
        operation = f"{prefix}-op-{track}"
        states = list(CYCLE)
        if rng.random() < 0.2:
            states.insert(rng.randrange(len(states)), rng.choice(CYCLE))  # an illegal or odd move
        for state in states:
            body = _state(track, state, {**ids, "operationId": operation})
            script.bodies.append(body)
            if rng.random() < 0.25:
                script.bodies.append(body)  # the platform retries
        # One sub-operation: each state is recorded once, whether it moved the track or came
        # late, and the track shows the furthest (idle ends it). docs/architecture.md.
        script.transitions += len(set(states))
        result = rng.choice(["SUCCESS", "FAIL"])
        script.bodies.append(_result(track, result, {**ids, "operationId": operation}))
        script.transitions += 1  # a result is in the audit trail too
        script.final[track] = max(states, key=CYCLE.index)
    return script


def _state(track: str, state: str, ids: dict[str, str]) -> bytes:
    if track == "software":
        return json.dumps(
            {"notifyType": "swUpgradeStateChangeNotify", **ids, "swUpgradeState": state}
        ).encode()
    return json.dumps(
        {"notifyType": "fwUpgradeStateChangeNotify", **ids, "step": STEPS[state], "stepDesc": state}
    ).encode()


def _result(track: str, result: str, ids: dict[str, str]) -> bytes:
    versions = {
        "curVersion": "2.0" if result == "SUCCESS" else "1.0",
        "targetVersion": "2.0",
        "sourceVersion": "1.0",
        "upgradeTime": "90",
    }
    if track == "software":
        extra = {"swUpgradeResult": result, "resultDesc": "r", "errorCode": "0", "description": "d"}
        return json.dumps(
            {"notifyType": "swUpgradeResultNotify", **ids, **versions, **extra}
        ).encode()
    return json.dumps(
        {
            "notifyType": "fwUpgradeResultNotify",
            **ids,
            **versions,
            "status": result,
            "statusDesc": "s",
        }
    ).encode()


def task_script(prefix: str, number: int) -> Script:
    task = f"{prefix}-task-{number:03d}"
    script = Script(task)
    plan = [
        ("Waitting", 0, "a"),
        ("Processing", 10, "b"),
        ("Processing", 10, "b"),
        ("Success", 20, "c"),
        ("Fail", 5, "d"),
    ]
    for status, second, request in plan:
        when = T0 + timedelta(seconds=second)
        body = {
            "resource": "batchtask",
            "event": "update",
            "event_time": when.strftime("%Y%m%dT%H%M%SZ"),
            "event_time_ms": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "request_id": f"{task}-{request}",
            "notify_data": {
                "body": {
                    "app_id": "app-e2e",
                    "task_id": task,
                    "task_type": "firmwareUpgrade",
                    "status": status,
                    "status_desc": status,
                }
            },
        }
        script.bodies.append(json.dumps(body).encode())
    script.final["status"] = "Success"
    script.transitions = 4  # three applied changes and one late event (applied: false)
    return script


def interleaved(scripts: list[Script]) -> Iterator[bytes]:
    """Every script's bodies, one from each in turn: each stream stays in order, and its
    deliveries arrive far apart, as from a real fleet."""
    for step in itertools.zip_longest(*(script.bodies for script in scripts)):
        yield from (body for body in step if body is not None)


def rollout(prefix: str, devices: int, tasks: int, seed: int = 7) -> list[Script]:
    rng = random.Random(seed)  # noqa: S311 - seeded: the same fleet for the same seed
    return [device_script(prefix, n, rng) for n in range(devices)] + [
        task_script(prefix, n) for n in range(tasks)
    ]


def deliveries(count: int, prefix: str, devices: int = 500, tasks: int = 20) -> Iterator[bytes]:
    """`count` bodies from successive rollouts (of `devices` devices and `tasks` tasks), each
    interleaved: a device's deliveries stay in order but arrive hundreds of requests apart, as
    from a real fleet, so concurrent connections never fight over one device's rows."""

    def rounds() -> Iterator[bytes]:
        for n in itertools.count():
            yield from interleaved(rollout(f"{prefix}{n}", devices, tasks, seed=n))

    return itertools.islice(rounds(), count)


def write_lines(path: Path, bodies: Iterable[bytes]) -> Path:
    """One body per line: what wrk's script, the open-loop client and `tracker import` read."""
    with path.open("wb") as out:
        for body in bodies:
            out.write(body + b"\n")
    return path
