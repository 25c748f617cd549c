"""`tracker prune-unrecognised --before TIME --archive FILE`: old unrecognised bodies are archived
and removed, and the log stays verifiable: every chain, a checkpoint taken before, and (with the
archive) the pruned links themselves. Tampering is still seen; the runtime role cannot prune."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.integration.test_runtime_role import runtime  # noqa: F401 - a fixture
from tests.support.cli import tracker
from tracker.http.keys import DATABASE

KEY = "checkpoint-key-for-prune-tests"
FORGED_RECORD = (
    "INSERT INTO pruned_bodies (position, size, sha256, seal, archive) "
    "VALUES ($1, 0, sha256(''), sha256(''), 'x')"
)


def noise(device: str, n: int) -> bytes:
    """An unrecognised body, of the kind a flood would send."""
    return b'{"notifyType": "deviceDataChanged", "deviceId": "%s", "n": %d, "data": "%s"}' % (
        device.encode(),
        n,
        b"z" * 300,
    )


@dataclass
class Logged:
    """What the test posted, by position."""

    recognised: dict[int, bytes]
    pruned: dict[int, bytes]  # unrecognised, received before the cut
    kept: dict[int, bytes]  # unrecognised, received after it
    cut: datetime


async def post(client: TestClient[Any, Any], body: bytes) -> int:
    response = await client.post("/v1/notifications", data=body)
    assert response.status == 200, await response.text()
    position: int = (await response.json())["position"]
    return position


async def post_history(client: TestClient[Any, Any], examples: dict[str, bytes]) -> Logged:
    """Recognised and unrecognised deliveries interleaved; two unrecognised streams of which
    one goes on after the cut (so a kept event follows pruned ones in its stream)."""
    logged = Logged({}, {}, {}, datetime.now(UTC))
    for n, raw in enumerate(examples.values()):
        logged.recognised[await post(client, raw)] = raw
        body = noise("noisy", n)
        logged.pruned[await post(client, body)] = body
    body = b'{"resource": "device", "event": "create", "x": [1, 2.50, "\\u00e9"]}'
    logged.pruned[await post(client, body)] = body  # no deviceId: the stream ""
    logged.cut = await database_clock(client)  # after those were stamped, before the next
    for n in (100, 101):
        body = noise("noisy", n)
        logged.kept[await post(client, body)] = body
    return logged


async def database_clock(client: TestClient[Any, Any]) -> datetime:
    """The database's clock now: it stamps each receive time (sql/016_trust_boundaries.sql)."""
    now: datetime = await client.app[DATABASE].pool.fetchval("SELECT clock_timestamp()")
    return now


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return tracker(url, *args, TRACKER_CHECKPOINT_KEY=KEY)


def exported(url: str) -> dict[int, str]:
    done = run(url, "export")
    assert done.returncode == 0, done.stderr
    return {json.loads(line)["position"]: line for line in done.stdout.splitlines()}


async def tampered(url: str, statement: str, *args: object) -> None:
    """Run `statement` as a superuser who disabled the append-only trigger."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("ALTER TABLE events DISABLE TRIGGER events_append_only")
        await conn.execute(statement, *args)
        await conn.execute("ALTER TABLE events ENABLE TRIGGER events_append_only")
    finally:
        await conn.close()


@dataclass
class Pruned:
    logged: Logged
    before: dict[int, str]  # `tracker export` before pruning, by position
    checkpoint: Path  # taken before pruning
    archive: Path
    said: str  # what the command printed


async def pruned_history(
    client: TestClient[Any, Any], url: str, examples: dict[str, bytes], where: Path
) -> Pruned:
    """`post_history`, a checkpoint, then the unrecognised bodies before the cut pruned."""
    logged = await post_history(client, examples)
    before = exported(url)
    taken = run(url, "checkpoint")
    assert taken.returncode == 0, taken.stderr
    checkpoint = where / "checkpoint.json"
    checkpoint.write_text(taken.stdout)
    archive = where / "archive.jsonl"
    cut = logged.cut.isoformat()
    done = run(url, "prune-unrecognised", "--before", cut, "--archive", str(archive))
    assert done.returncode == 0, done.stderr
    return Pruned(logged, before, checkpoint, archive, done.stdout)


async def test_pruned_bodies_are_archived_and_the_log_still_verifies(
    make_client: MakeClient, database_url: str, examples: dict[str, bytes], tmp_path: Path
) -> None:
    client = await make_client()
    pruned = await pruned_history(client, database_url, examples, tmp_path)
    logged, before, archive, done = pruned.logged, pruned.before, pruned.archive, pruned.said
    first, last = min(logged.pruned), max(logged.pruned)
    assert done.startswith(
        f"prune-unrecognised: archived {len(logged.pruned)} unrecognised bodies received before"
    )
    assert f"(positions {first}..{last}, {sum(map(len, logged.pruned.values())):,} bytes)" in done

    # The archive: exactly the pruned events, as `tracker export` wrote them, bodies exact.
    lines = archive.read_bytes().splitlines()
    assert len(lines) == len(logged.pruned) == 6
    archived = {orjson.loads(line)["position"]: orjson.loads(line) for line in lines}
    assert {p: a["body"].encode() for p, a in archived.items()} == logged.pruned
    assert [line.decode() for line in lines] == [before[p] for p in sorted(logged.pruned)]
    assert f"(sha256 {hashlib.sha256(archive.read_bytes()).hexdigest()})" in done

    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT e.position, e.raw, e.codec, p.size, p.sha256, p.archive FROM events e "
            "JOIN pruned_bodies p USING (position) ORDER BY position"
        )
        untouched = await conn.fetchval("SELECT count(*) FROM events WHERE codec <> -1")
    finally:
        await conn.close()
    assert [row["position"] for row in rows] == sorted(logged.pruned)
    for row in rows:
        body = logged.pruned[row["position"]]
        assert (bytes(row["raw"]), row["codec"]) == (b"", -1)
        assert (row["size"], bytes(row["sha256"])) == (len(body), hashlib.sha256(body).digest())
        assert row["archive"] == str(archive)
    assert untouched == len(logged.recognised) + len(logged.kept)

    # Verify: every chain intact, the pruned counted; a checkpoint from before still holds.
    verified = run(database_url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "every hash chain is intact" in verified.stdout
    assert "verify: 6 bodies pruned (archived); each checked against the seal" in verified.stdout
    against = run(database_url, "verify", "--against", str(pruned.checkpoint))
    assert against.returncode == 0, against.stdout + against.stderr
    assert "verify: the log extends the checkpoint of" in against.stdout
    from_archive = run(database_url, "verify", "--archive", str(archive))
    assert from_archive.returncode == 0, from_archive.stdout + from_archive.stderr
    assert "6 bodies pruned (archived); 6 of them recomputed from the archive" in (
        from_archive.stdout
    )

    # Again: nothing left before the cut; an existing archive is never overwritten.
    again = run(
        database_url, "prune-unrecognised", "--before", logged.cut.isoformat(), "--archive",
        str(tmp_path / "again.jsonl"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("prune-unrecognised: nothing received before")
    assert not (tmp_path / "again.jsonl").exists()
    over = run(
        database_url, "prune-unrecognised", "--before", "2100-01-01", "--archive", str(archive)
    )
    assert over.returncode == 1
    assert "exists; name a new archive" in over.stderr
    assert archive.read_bytes().splitlines() == lines


async def test_readers_say_a_body_was_pruned(
    make_client: MakeClient, database_url: str, examples: dict[str, bytes], tmp_path: Path
) -> None:
    client = await make_client()
    pruned = await pruned_history(client, database_url, examples, tmp_path)
    logged, before = pruned.logged, pruned.before
    page = await (await client.get("/v1/events", params={"limit": "100"})).json()
    items = {item["position"]: item for item in page["items"]}
    assert {p for p, item in items.items() if item["pruned"]} == set(logged.pruned)
    for position, item in items.items():
        if item["pruned"]:
            assert item["payload"] is None
            assert item["event_type"] == json.loads(before[position])["event_type"]
        else:
            kept = logged.recognised.get(position) or logged.kept[position]
            assert item["payload"] == json.loads(kept)
    gone = await client.get(f"/v1/events/{min(logged.pruned)}/raw")
    assert gone.status == 410
    assert (await gone.json())["error"]["code"] == "body_pruned"
    after = exported(database_url)
    for position in logged.pruned:
        line = json.loads(after[position])
        assert (line["body"], line["pruned"]) == (None, True)
        assert {k: v for k, v in line.items() if k not in {"body", "pruned"}} == {
            k: v for k, v in json.loads(before[position]).items() if k != "body"
        }
    assert all(after[p] == before[p] for p in (*logged.recognised, *logged.kept))


async def test_tampering_with_a_pruned_log_is_still_detected(
    make_client: MakeClient, database_url: str, examples: dict[str, bytes], tmp_path: Path
) -> None:
    client = await make_client()
    pruned = await pruned_history(client, database_url, examples, tmp_path)
    logged, checkpoint, archive = pruned.logged, pruned.checkpoint, pruned.archive
    noisy = sorted(p for p, body in logged.pruned.items() if b'"noisy"' in body)
    recognised = min(logged.recognised)

    async def broken(*args: str) -> list[int]:
        """The positions `tracker verify ARGS` names as tampered (and it exits 1)."""
        done = run(database_url, "verify", *args)
        named = [
            int(line.split()[2]) for line in done.stdout.splitlines() if line.startswith("tampered")
        ]
        assert done.returncode == (1 if named else 0), done.stdout + done.stderr
        return named

    assert await broken() == []
    # A pruned event's stored hash: it no longer matches its seal, nor the next event (pruned
    # too, here) the seal that names its predecessor's hash.
    original = await fetch(database_url, "SELECT hash FROM events WHERE position = $1", noisy[0])
    await tampered(database_url, "UPDATE events SET hash = $2 WHERE position = $1", noisy[0],
                   hashlib.sha256(b"forged").digest())  # fmt: skip
    assert await broken() == [noisy[0], noisy[1]]
    assert await broken("--archive", str(archive)) == [noisy[0], noisy[1]]
    await tampered(database_url, "UPDATE events SET hash = $2 WHERE position = $1", noisy[0],
                   original)  # fmt: skip
    assert await broken() == []

    # Any other event, as before pruning.
    await tampered(
        database_url,
        "UPDATE events SET received_at = received_at - interval '1 day' WHERE position = $1",
        recognised,
    )
    assert await broken() == [recognised]
    await tampered(
        database_url,
        "UPDATE events SET received_at = received_at + interval '1 day' WHERE position = $1",
        recognised,
    )
    assert await broken() == []

    # A pruned event's own fields: its seal covers them, the link recomputed from the archive
    # and the checkpoint too.
    await tampered(
        database_url,
        "UPDATE events SET received_at = received_at - interval '1 day' WHERE position = $1",
        noisy[0],
    )
    assert await broken() == [noisy[0]]
    assert await broken("--archive", str(archive)) == [noisy[0]]
    assert run(database_url, "verify", "--against", str(checkpoint)).returncode == 1
    await tampered(
        database_url,
        "UPDATE events SET received_at = received_at + interval '1 day' WHERE position = $1",
        noisy[0],
    )
    assert run(database_url, "verify", "--against", str(checkpoint)).returncode == 0

    # A recognised event marked pruned, or a pruned one without its record.
    body = await fetch(database_url, "SELECT raw FROM events WHERE position = $1", recognised)
    codec = await fetch(database_url, "SELECT codec FROM events WHERE position = $1", recognised)
    await tampered(
        database_url, "UPDATE events SET raw = '', codec = -1 WHERE position = $1", recognised
    )
    assert await broken() == [recognised]
    await tampered(
        database_url, "UPDATE events SET raw = $2, codec = $3 WHERE position = $1", recognised,
        body, codec,
    )  # fmt: skip
    assert await broken() == []

    # An archive whose body is not the one pruned.
    forged = tmp_path / "forged.jsonl"
    lines = archive.read_bytes().splitlines()
    line = orjson.loads(lines[0])
    line["body"] = line["body"].replace("zzz", "zzy", 1)
    forged.write_bytes(b"\n".join([orjson.dumps(line), *lines[1:]]) + b"\n")
    assert await broken("--archive", str(forged)) == [line["position"]]
    assert await broken("--archive", str(archive)) == []


async def fetch(url: str, query: str, *args: object) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def test_only_pruning_may_rewrite_events_and_only_an_unrecognised_body(
    make_client: MakeClient, database_url: str, examples: dict[str, bytes]
) -> None:
    client = await make_client()
    logged = await post_history(client, examples)
    recognised, unrecognised = min(logged.recognised), min(logged.pruned)
    conn = await asyncpg.connect(database_url)
    try:
        for statement in ("DELETE FROM events", "TRUNCATE events"):
            attempt = conn.transaction()
            await attempt.start()
            try:
                await conn.execute("SET LOCAL tracker.pruning = 'on'")
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                    await conn.execute(statement)
            finally:
                await attempt.rollback()
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE events SET raw = '', codec = -1 WHERE position = $1",
                               unrecognised)  # fmt: skip
        empty = "UPDATE events SET raw = '', codec = -1 WHERE position = $1"
        for position, statement, recorded in (
            (unrecognised, empty, False),  # no record of it in pruned_bodies
            (recognised, empty, True),  # a recognised event's body
            (unrecognised, empty.replace("raw = '', ", ""), True),  # its bytes left
            (unrecognised, "UPDATE events SET received_at = now() WHERE position = $1", True),
            (unrecognised, empty.replace("codec = -1", "codec = -1, hash = '\\x00'"), True),
        ):
            attempt = conn.transaction()
            await attempt.start()
            try:
                await conn.execute("SET LOCAL tracker.pruning = 'on'")
                if recorded:
                    await conn.execute(FORGED_RECORD, position)
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="pruning may only"):
                    await conn.execute(statement, position)
            finally:
                await attempt.rollback()
        assert await conn.fetchval("SELECT count(*) FROM events WHERE codec = -1") == 0
        for statement in ("DELETE FROM pruned_bodies", "UPDATE pruned_bodies SET size = 1"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_runtime_role_cannot_prune(
    runtime: tuple[str, str],  # noqa: F811 - the fixture imported above
    database_url: str,
    make_client: MakeClient,
    tmp_path: Path,
) -> None:
    url, _ = runtime
    client = await make_client(database_url=url)
    body = noise("noisy", 1)
    position = await post(client, body)
    archive = tmp_path / "archive.jsonl"
    done = tracker(url, "prune-unrecognised", "--before", "2100-01-01", "--archive", str(archive))
    assert done.returncode == 1
    assert "this role may not prune the log" in done.stderr
    assert not archive.exists()
    conn = await asyncpg.connect(url)
    try:
        for statement in (
            FORGED_RECORD,
            "UPDATE events SET raw = '', codec = -1 WHERE position = $1",
        ):
            attempt = conn.transaction()
            await attempt.start()
            try:
                await conn.execute("SET LOCAL tracker.pruning = 'on'")
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(statement, position)
            finally:
                await attempt.rollback()
    finally:
        await conn.close()
    assert await (await client.get(f"/v1/events/{position}/raw")).read() == body
    assert run(database_url, "verify").returncode == 0
