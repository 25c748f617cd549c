"""`tracker readmit` end to end: deliveries an earlier version refused come back, as they were.

The refused rows are written as an earlier version wrote them (its 422s for a missing
`description`, a null `stepDesc`...), then a real server and real `tracker` processes take over.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from testkit.server import TrackerProcess
from tests.e2e.conftest import StartTracker
from tests.e2e.http import post, request
from tests.support.cli import tracker

NOW = datetime.now(UTC)


def ids(device: str, op: str = "op-1", sub: str = "s1") -> dict[str, str]:
    return {"deviceId": device, "appId": "app-1", "operationId": op, "subOperationId": sub}


def sw(device: str, state: str, **kw: str) -> bytes:
    body = {
        "notifyType": "swUpgradeStateChangeNotify",
        **ids(device, **kw),
        "swUpgradeState": state,
    }
    return json.dumps(body).encode()


def sw_result(device: str, outcome: str, cur: str, **kw: str) -> bytes:
    # No `description`: what versions before issue 11 answered 422 to.
    body = {
        "notifyType": "swUpgradeResultNotify",
        **ids(device, **kw),
        "curVersion": cur,
        "targetVersion": "2.0",
        "sourceVersion": "1.0",
        "swUpgradeResult": outcome,
        "upgradeTime": "60",
        "resultDesc": "r",
        "errorCode": "0" if outcome == "SUCCESS" else "E1",
    }
    return json.dumps(body).encode()


def fw(device: str, step: str) -> bytes:
    body = {
        "notifyType": "fwUpgradeStateChangeNotify",
        **ids(device),
        "step": step,
        "stepDesc": None,
    }
    return json.dumps(body).encode()


async def refused_earlier(url: str, rows: list[tuple[timedelta, int, bytes]]) -> None:
    """Rows in `rejected` as an earlier version left them: (how long ago, status, body)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO rejected (received_at, status, code, reason, raw) "
            "VALUES ($1, $2, 'schema_violation', 'refused by an earlier version', $3)",
            [(NOW - ago, status, raw) for ago, status, raw in rows],
        )
    finally:
        await conn.close()


async def fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


@pytest.fixture
def server(start_tracker: StartTracker, database_url: str) -> TrackerProcess:
    return start_tracker({"TRACKER_DATABASE_URL": database_url})


def test_readmit_brings_back_what_passes_now_without_regressing_a_track(
    server: TrackerProcess, database_url: str
) -> None:
    url = server.url
    # Live, now: "late" is downloaded; "done" has its SUCCESS result.
    for body in (sw("late", "downloading"), sw("late", "downloaded"), sw("done", "updating")):
        assert post(url, body).status == 200
    assert post(url, sw_result("done", "SUCCESS", "2.0")).status == 200
    refused = [
        (timedelta(hours=2), 422, fw("fresh", "1")),  # a device only ever refused
        (timedelta(hours=1), 422, sw_result("fresh-sw", "FAIL", "1.0")),
        # Refused an hour before its `downloaded` arrived: still a later step of its upgrade.
        (timedelta(hours=1), 422, sw("late", "updating")),
        (timedelta(hours=1), 422, sw_result("done", "FAIL", "1.0")),  # older than its SUCCESS
        (timedelta(minutes=30), 422, sw_result("late", "FAIL", "1.0")),  # its first result
        (timedelta(minutes=20), 400, b'{"notifyType": '),  # still not JSON
        (timedelta(minutes=10), 422, sw("x", "rebooting")),  # still not a state
    ]
    asyncio.run(refused_earlier(database_url, refused))
    before = asyncio.run(fetch(database_url, "SELECT count(*) FROM events"))[0][0]

    dry = tracker(database_url, "readmit", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == len(refused) + 1
    assert sum(": passes: " in line for line in lines) == 5
    assert "still refused: invalid_json" in lines[5]
    assert "swUpgradeState" in lines[6]
    assert lines[-1] == "readmit: would readmit 5; 2 still refused"
    assert asyncio.run(fetch(database_url, "SELECT count(*) FROM events"))[0][0] == before

    done = tracker(database_url, "readmit")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "readmit: readmitted 5; 2 still refused"
    appended = asyncio.run(
        fetch(
            database_url,
            "SELECT e.position, e.received_at, e.readmitted_from, r.received_at AS refused_at "
            "FROM events e JOIN rejected r ON r.id = e.readmitted_from ORDER BY e.position",
        )
    )
    assert [row["readmitted_from"] for row in appended] == [1, 2, 3, 4, 5]  # in refused order
    assert all(row["received_at"] == row["refused_at"] for row in appended)
    assert all(row["position"] > before for row in appended)

    late = request("GET", f"{url}/v1/devices/late").json()["software"]
    # What a delivery says, not when it came, decides: the device got as far as updating,
    # since the time that report was first received.
    assert late["state"] == "updating"
    assert datetime.fromisoformat(late["state_since"]) == NOW - timedelta(hours=1)
    assert late["last_result"]["result"] == "FAIL"  # its only result: it applies
    trail = request("GET", f"{url}/v1/devices/late/transitions").json()["items"]
    assert [(t["kind"], t["to_state"], t["applied"]) for t in trail] == [
        ("state", "downloading", True),
        ("state", "downloaded", True),
        ("state", "updating", True),
        ("result", "updating", True),
    ]
    done_track = request("GET", f"{url}/v1/devices/done").json()["software"]
    # A SUCCESS outranks a FAIL of the same sub-operation, whichever came first.
    assert done_track["last_result"]["result"] == "SUCCESS"
    assert done_track["version"] == "2.0"
    fresh = request("GET", f"{url}/v1/devices/fresh").json()["firmware"]
    assert fresh["state"] == "downloading"
    assert datetime.fromisoformat(fresh["state_since"]) == NOW - timedelta(hours=2)
    rollup = request("GET", f"{url}/v1/operations/op-1?track=software").json()
    assert rollup["results"] == {"SUCCESS": 1, "FAIL": 2}  # done, late and fresh-sw

    events = request("GET", f"{url}/v1/events?after={before}").json()["items"]
    assert [e["readmitted_from"] for e in events] == [1, 2, 3, 4, 5]
    rejected = request("GET", f"{url}/v1/rejected").json()["items"]
    assert [r["readmitted_position"] for r in rejected] == [
        *(row["position"] for row in appended),
        None,
        None,
    ]

    again = tracker(database_url, "readmit")
    assert again.stdout.splitlines()[-1] == "readmit: readmitted 0; 2 still refused"
    count = asyncio.run(fetch(database_url, "SELECT count(*) FROM events"))[0][0]
    assert count == before + 5

    check = tracker(database_url, "replay", "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no drift" in check.stdout


def test_since_takes_only_what_was_refused_from_then_on(
    server: TrackerProcess, database_url: str
) -> None:
    asyncio.run(
        refused_earlier(
            database_url,
            [
                (timedelta(days=2), 422, sw_result("old", "SUCCESS", "2.0")),
                (timedelta(hours=1), 422, sw_result("new", "SUCCESS", "2.0")),
            ],
        )
    )
    since = (NOW - timedelta(days=1)).isoformat()
    shown = tracker(database_url, "readmit", "--since", since)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == "readmit: readmitted 1; 0 still refused"
    assert request("GET", f"{server.url}/v1/devices/new").status == 200
    assert request("GET", f"{server.url}/v1/devices/old").status == 404
    bad = tracker(database_url, "readmit", "--since", "last tuesday")
    assert bad.returncode == 2
    assert "not an ISO 8601 time" in bad.stderr
