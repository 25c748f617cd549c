"""What refusals may cost is bounded (issue 12, item 6): a refused body is kept up to a prefix,
with its whole size and SHA-256, and old refusals can be pruned, by that command alone."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.conftest import MakeClient
from tests.support.cli import tracker

KIB = 1024


async def test_a_refused_body_is_kept_up_to_a_prefix_with_its_size_and_hash(
    make_client: MakeClient,
) -> None:
    client: TestClient[Any, Any] = await make_client(rejected_prefix_bytes=4 * KIB)
    big = b"not json " + os.urandom(200 * KIB)
    small = b"{not json either"
    for body in (big, small):
        assert (await client.post("/v1/notifications", data=body)).status == 400
    [first, second] = (await (await client.get("/v1/rejected")).json())["items"]
    assert (first["size"], first["sha256"], first["truncated"]) == (
        len(big),
        hashlib.sha256(big).hexdigest(),
        True,
    )
    assert len(first["body_base64"]) == len(base64.b64encode(big[: 4 * KIB]))
    assert (second["size"], second["sha256"], second["truncated"]) == (
        len(small),
        hashlib.sha256(small).hexdigest(),
        False,
    )
    assert second["body"] == small.decode()


async def test_a_body_over_the_limit_keeps_its_prefix_and_no_hash(
    make_client: MakeClient,
) -> None:
    client: TestClient[Any, Any] = await make_client(max_body_bytes=100 * KIB)
    assert (await client.post("/v1/notifications", data=b"x" * (300 * KIB))).status == 413
    [item] = (await (await client.get("/v1/rejected")).json())["items"]
    assert (item["size"], item["sha256"], item["truncated"]) == (None, None, True)
    assert len(item["body"]) == 64 * KIB  # the default prefix


async def test_old_refusals_are_pruned_by_the_command_alone(
    client: TestClient[Any, Any], database_url: str
) -> None:
    for n in range(4):
        assert (await client.post("/v1/notifications", data=b"bad %d" % n)).status == 400
    conn = await asyncpg.connect(database_url)
    try:
        now = datetime.now(UTC)
        for statement in (
            "DELETE FROM rejected",
            "UPDATE rejected SET reason = 'x'",
            "TRUNCATE rejected",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await conn.execute(statement)
        # Two of them back-dated, as if refused a month ago (the test may write that way).
        await conn.execute("ALTER TABLE rejected DISABLE TRIGGER rejected_append_only")
        await conn.execute(
            "UPDATE rejected SET received_at = $1 WHERE id <= 2", now - timedelta(days=30)
        )
        await conn.execute("ALTER TABLE rejected ENABLE TRIGGER rejected_append_only")

        week_ago = (now - timedelta(days=7)).isoformat()
        done = tracker(database_url, "prune-rejected", "--before", week_ago)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("prune-rejected: removed 2 refused deliveries received")
        assert "(ids 1..2, 10 bytes kept of them)" in done.stdout
        assert [r["id"] for r in await conn.fetch("SELECT id FROM rejected ORDER BY id")] == [3, 4]
        again = tracker(database_url, "prune-rejected", "--before", week_ago)
        assert again.stdout.startswith("prune-rejected: nothing received before ")
    finally:
        await conn.close()
