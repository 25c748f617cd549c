"""`tracker guards ...` and `tracker alerts` as a person at a terminal runs them: real processes
against a real PostgreSQL, the alerts made by real ingestion. What each command prints, its exit
code, and what it wrote, or, when it refused, that it wrote nothing at all."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from tracker.config import Settings, variable
from tracker.domain.delivery import decode
from tracker.domain.guards import Definition
from tracker.store import guard_changes, ingestion
from tracker.store.database import Database

SECRET = "whsec-cli-guards-0123456789"
OTHER_SECRET = "whsec-cli-guards-another-one"
HOOK = "http://127.0.0.1/hook"  # allowed by TRACKER_WEBHOOK_HOSTS=127.0.0.1; never called here
LOOPBACK_ONLY = {"TRACKER_WEBHOOK_HOSTS": "127.0.0.1"}
SETTINGS = frozenset(variable(spec.name) for spec in fields(Settings))


def run(
    url: str, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """`tracker ARGS` in a process of its own, with no setting but those given here: a
    TRACKER_WEBHOOK_HOSTS or TRACKER_IOTDA_* in the caller's environment would change what
    `put` allows (the run's own TRACKER_TEST_* marks are not settings, and stay)."""
    inherited = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env={**inherited, "TRACKER_DATABASE_URL": url, "TRACKER_LOG_LEVEL": "", **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def table(text: str) -> list[list[str]]:
    """A printed table's lines, cut into cells (cells are two or more spaces apart)."""
    return [re.split(r"\s{2,}", line) for line in text.splitlines()]


async def put(database: Database, name: str, **document: Any) -> None:
    await guard_changes.put(database, name, Definition.model_validate(document))


async def written(database: Database) -> list[list[object]]:
    """Everything a guard's `put` writes: the definitions and the secrets, with their times."""
    found = await database.fetch(
        "guards",
        "SELECT name, definition::text AS d, created_at, updated_at FROM guards ORDER BY name",
    )
    secrets = await database.fetch(
        "secrets", "SELECT name, secret, updated_at FROM webhook_secrets ORDER BY name"
    )
    return [list(row.values()) for row in [*found, *secrets]]


async def stored(database: Database, name: str) -> Any:
    row = await database.fetchrow(
        "guard", "SELECT definition::text AS d FROM guards WHERE name = $1", name
    )
    assert row is not None, name
    return orjson.loads(row["d"])


async def secret_of(database: Database, name: str) -> str | None:
    row = await database.fetchrow(
        "secret", "SELECT secret FROM webhook_secrets WHERE name = $1", name
    )
    return None if row is None else str(row["secret"])


async def test_put_creates_then_replaces_and_never_shows_the_secret(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "guard.json"
    path.write_bytes(orjson.dumps({"scope": {"app_id": "app-1"}, "when": {"failed_above": 2}}))
    created = run(database_url, "guards", "put", "too-many", "--file", str(path))
    assert (created.returncode, created.stdout, created.stderr) == (
        0,
        "guard too-many created\n",
        "",
    )
    assert (await stored(database, "too-many"))["when"] == {"failed_above": 2}

    path.write_bytes(orjson.dumps({"when": {"failure_rate_above": 0.25, "min_results": 10}}))
    replaced = run(database_url, "guards", "put", "too-many", "--file", str(path))
    assert (replaced.returncode, replaced.stdout, replaced.stderr) == (
        0,
        "guard too-many replaced\n",
        "",
    )
    assert await stored(database, "too-many") == {
        "scope": {},
        "when": {"failure_rate_above": 0.25, "min_results": 10},
        "webhook": None,
        "stop_task": False,
    }

    # From stdin, with a webhook and its secret: the document, which has no secret.
    body = {"when": {"failed_above": 0}, "webhook": {"url": HOOK, "secret": SECRET}}
    piped = run(
        database_url,
        "guards",
        "put",
        "hooked",
        "--file",
        "-",
        "--json",
        stdin=json.dumps(body),
        **LOOPBACK_ONLY,
    )
    assert piped.returncode == 0, piped.stderr
    assert SECRET not in piped.stdout + piped.stderr
    document = json.loads(piped.stdout)
    assert document | {"created_at": None, "updated_at": None} == {
        "name": "hooked",
        "scope": {},
        "when": {"failed_above": 0},
        "webhook": {"url": HOOK, "secret_set": True},
        "stop_task": False,
        "created_at": None,
        "updated_at": None,
    }
    assert document["created_at"] == document["updated_at"]
    # Kept for the deliverer alone, apart from the definition.
    assert await secret_of(database, "hooked") == SECRET
    assert SECRET not in json.dumps(await stored(database, "hooked"))


class Refusal(NamedTuple):
    """A `put` refused: of guard `name`, the definition's bytes (None: no such file), the
    settings it runs with, and the exit code and words expected on stderr."""

    name: str
    definition: bytes | None
    env: dict[str, str]
    code: int
    said: list[str]


ONE_FAILED = {"when": {"failed_above": 1}}
REFUSALS = {
    "unknown condition": Refusal(
        "kept",
        orjson.dumps({"when": {"nothing_above": 1}}),
        {},
        1,
        ["the definition is refused", "when: exactly one condition: failure_rate_above"],
    ),
    "not JSON": Refusal("kept", b"{not json", {}, 1, ["the definition is not JSON"]),
    "unreadable": Refusal("kept", None, {}, 1, ["cannot read the definition", "No such file"]),
    "host not allowed": Refusal(
        "kept",
        orjson.dumps(
            ONE_FAILED | {"webhook": {"url": "http://hooks.example.com/x", "secret": OTHER_SECRET}}
        ),
        LOOPBACK_ONLY,
        1,
        ["the webhook's URL is refused", "hooks.example.com", "TRACKER_WEBHOOK_HOSTS"],
    ),
    "private address": Refusal(
        "kept",
        orjson.dumps(
            ONE_FAILED | {"webhook": {"url": "http://10.0.0.1/x", "secret": OTHER_SECRET}}
        ),
        {},
        1,
        ["the webhook's URL is refused", "10.0.0.1", "not a public address"],
    ),
    "stop_task without IoTDA": Refusal(
        "kept",
        orjson.dumps(ONE_FAILED | {"stop_task": True}),
        {},
        1,
        ["stop_task needs TRACKER_IOTDA_"],
    ),
    "stop_task with half of IoTDA": Refusal(  # a usage error, as `tracker reconcile` says it
        "kept",
        orjson.dumps(ONE_FAILED | {"stop_task": True}),
        {"TRACKER_IOTDA_ENDPOINT": "https://iotda.example.com"},
        2,
        ["TRACKER_IOTDA_PROJECT_ID", "TRACKER_IOTDA_AK", "TRACKER_IOTDA_SK"],
    ),
    # The API refuses it too, and an alert could not carry it: such a guard would fail the
    # alerts of every rollout it scopes.
    "bad name": Refusal(
        "has space", orjson.dumps(ONE_FAILED), {}, 1, ["'has space' is not a guard's name"]
    ),
}


async def test_a_refused_put_says_why_and_writes_nothing(
    database: Database, database_url: str, tmp_path: Path
) -> None:
    """Each refusal aimed at an existing guard (one database for all: each leaves it as is)."""
    await put(database, "kept", when={"failed_above": 5}, webhook={"url": HOOK, "secret": SECRET})
    before = await written(database)
    for case, (name, definition, env, code, said) in REFUSALS.items():
        path = tmp_path / f"{case}.json"
        if definition is not None:
            path.write_bytes(definition)
        refused = run(database_url, "guards", "put", name, "--file", str(path), **env)
        assert refused.returncode == code, (case, refused.stdout + refused.stderr)
        assert (refused.stdout, refused.stderr[:8]) == ("", "guards: "), (case, refused.stderr)
        assert "Traceback" not in refused.stderr, (case, refused.stderr)
        assert all(words in refused.stderr for words in said), (case, refused.stderr)
        assert OTHER_SECRET not in refused.stderr, case
        assert await written(database) == before, case


async def test_list_show_and_delete(database: Database, database_url: str) -> None:
    await put(
        database,
        "a-scoped",
        scope={"app_id": "app-1", "track": "firmware"},
        when={"stuck_above": 3, "stuck_for": 600},
    )
    await put(
        database, "b-hooked", when={"failed_above": 0}, webhook={"url": HOOK, "secret": SECRET}
    )
    headers = ["GUARD", "SCOPE", "WHEN", "WEBHOOK", "STOP TASK"]
    a_row = ["a-scoped", "app_id=app-1, track=firmware", "stuck_above=3, stuck_for=600", "-", "no"]
    b_row = ["b-hooked", "every rollout", "failed_above=0", HOOK, "no"]

    listed = run(database_url, "guards", "list")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert table(listed.stdout) == [headers, a_row, b_row]
    as_json = run(database_url, "guards", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    documents = json.loads(as_json.stdout)
    assert [(d["name"], d["scope"], d["when"], d["webhook"]) for d in documents] == [
        (
            "a-scoped",
            {"app_id": "app-1", "track": "firmware"},
            {"stuck_above": 3, "stuck_for": 600},
            None,
        ),
        ("b-hooked", {}, {"failed_above": 0}, {"url": HOOK, "secret_set": True}),
    ]

    shown = run(database_url, "guards", "show", "b-hooked")
    assert (shown.returncode, table(shown.stdout)) == (0, [headers, b_row])
    one = run(database_url, "guards", "show", "a-scoped", "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout) == documents[0]
    assert all(SECRET not in out.stdout + out.stderr for out in (listed, as_json, shown, one))

    missing = run(database_url, "guards", "show", "nobody")
    assert (missing.returncode, missing.stdout) == (3, "")
    assert "no guard named 'nobody'" in missing.stderr

    deleted = run(database_url, "guards", "delete", "b-hooked")
    assert (deleted.returncode, deleted.stderr) == (0, "")
    assert deleted.stdout.startswith("guard b-hooked deleted")
    names = await database.fetch("guards", "SELECT name FROM guards")
    assert [row["name"] for row in names] == ["a-scoped"]
    assert await secret_of(database, "b-hooked") is None  # its secret goes with it
    again = run(database_url, "guards", "delete", "b-hooked")
    assert (again.returncode, again.stdout) == (3, "")
    assert "no guard named 'b-hooked'" in again.stderr


def result(device: str, op: str, sub: str, outcome: str) -> bytes:
    """An OceanConnect swUpgradeResultNotify body."""
    return orjson.dumps(
        {
            "notifyType": "swUpgradeResultNotify",
            "deviceId": device,
            "appId": "app-1",
            "operationId": op,
            "subOperationId": sub,
            "swUpgradeResult": outcome,
            "errorCode": "E42" if outcome == "FAIL" else "0",
        }
    )


async def deliver(database: Database, raw: bytes) -> None:
    async with database.transaction("deliver") as conn:
        await ingestion.ingest(conn, [decode(raw)])


async def test_alerts_lists_what_ingestion_fired_filtered(
    database: Database, database_url: str
) -> None:
    await put(database, "any-failure", when={"failed_above": 0})
    await put(database, "op-8-only", scope={"operation_id": "op-8"}, when={"failed_above": 0})
    await deliver(database, result("d-1", "op-7", "s-1", "FAIL"))
    await deliver(database, result("d-2", "op-8", "s-1", "FAIL"))

    listed = run(database_url, "alerts")
    assert (listed.returncode, listed.stderr) == (0, "")
    [headers, *rows] = table(listed.stdout)
    assert headers == [
        "GUARD",
        "OPERATION",
        "TRACK",
        "STATE",
        "VALUE / THRESHOLD",
        "FIRED",
        "RESOLVED",
        "STOP",
    ]
    assert sorted((r[:5], r[6:]) for r in rows) == [
        (["any-failure", "op-7", "software", "FIRING", "1 / 0"], ["-", "-"]),
        (["any-failure", "op-8", "software", "FIRING", "1 / 0"], ["-", "-"]),
        (["op-8-only", "op-8", "software", "FIRING", "1 / 0"], ["-", "-"]),
    ]
    none = run(database_url, "alerts", "--state", "resolved")
    assert (none.returncode, none.stdout) == (0, "no alerts\n")

    both = run(database_url, "alerts", "--json", "--operation-id", "op-8", "--guard", "any-failure")
    assert both.returncode == 0, both.stderr
    [alert] = json.loads(both.stdout)
    assert alert["fired_at"] is not None
    assert alert | {"fired_at": None} == {
        "id": "any-failure:op-8:software:1",
        "guard": "any-failure",
        "operation_id": "op-8",
        "track": "software",
        "app_id": "app-1",
        "platform": "oceanconnect",
        "state": "firing",
        "value": 1.0,
        "threshold": 0.0,
        "fired_at": None,
        "resolved_at": None,
        "changes": 1,
        "new_codes": [],
        "stop": None,
    }

    await deliver(database, result("d-1", "op-7", "s-2", "SUCCESS"))  # op-7 has no failure now
    resolved = run(database_url, "alerts", "--json", "--state", "resolved")
    assert resolved.returncode == 0, resolved.stderr
    [alert] = json.loads(resolved.stdout)
    assert (alert["id"], alert["state"], alert["value"], alert["changes"]) == (
        "any-failure:op-7:software:2",
        "resolved",
        0.0,
        2,
    )
    assert alert["resolved_at"] is not None


DEAD_ID, DELIVERED_ID = "any-failure:op-1:software:2", "any-failure:op-1:software:1"
OUTBOX_ROW = """
INSERT INTO webhook_outbox (id, ordering, url, secret_ref, body, created_at, attempts, next_at,
                            last_error, state, delivered_at)
VALUES ($1, 'op-1:software', $2, 'any-failure', '{}'::bytea, now() - interval '1 day', $3,
        now() - interval '1 hour', $4, $5, $6)
"""


async def test_dead_letters_are_listed_and_retried(database: Database, database_url: str) -> None:
    async with database.transaction("dead letters") as conn:
        await conn.execute(OUTBOX_ROW, DELIVERED_ID, HOOK, 1, None, "delivered", None)
        await conn.execute(
            OUTBOX_ROW, DEAD_ID, HOOK, 12, "HTTP 503 from the receiver", "dead", None
        )

    dead = run(database_url, "guards", "dead")
    assert (dead.returncode, dead.stderr) == (0, "")
    [headers, row] = table(dead.stdout)
    assert headers == ["ID", "GUARD", "URL", "ATTEMPTS", "DIED", "LAST ERROR"]
    assert row[:4] + row[5:] == [DEAD_ID, "any-failure", HOOK, "12", "HTTP 503 from the receiver"]
    as_json = run(database_url, "guards", "dead", "--json")
    assert as_json.returncode == 0, as_json.stderr
    [letter] = json.loads(as_json.stdout)
    assert {k: letter[k] for k in ("id", "guard", "url", "attempts", "last_error")} == {
        "id": DEAD_ID,
        "guard": "any-failure",
        "url": HOOK,
        "attempts": 12,
        "last_error": "HTTP 503 from the receiver",
    }

    retried = run(database_url, "guards", "retry", DEAD_ID)
    assert (retried.returncode, retried.stdout, retried.stderr) == (
        0,
        f"webhook {DEAD_ID} queued again\n",
        "",
    )
    after = await database.fetchrow(
        "row",
        "SELECT state, attempts, retried_at IS NOT NULL AS retried, next_at <= now() AS due "
        "FROM webhook_outbox WHERE id = $1",
        DEAD_ID,
    )
    assert after is not None
    assert dict(after) == {"state": "pending", "attempts": 12, "retried": True, "due": True}

    for unknown in ("no-such-change", DELIVERED_ID):  # only a dead letter is sent again
        refused = run(database_url, "guards", "retry", unknown)
        assert (refused.returncode, refused.stdout) == (3, "")
        assert f"no dead webhook delivery {unknown!r}" in refused.stderr
    delivered = await database.fetchrow(
        "row", "SELECT state FROM webhook_outbox WHERE id = $1", DELIVERED_ID
    )
    assert delivered is not None
    assert delivered["state"] == "delivered"
