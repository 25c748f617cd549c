"""`tracker verify` is read-only (issue 12, item 5): it never migrates, and a role that may only
SELECT can run it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tests.support.cli import tracker
from tracker.domain.delivery import decode
from tracker.store import ingestion
from tracker.store.database import Database


def as_role(url: str, role: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


async def test_verify_never_migrates(empty_database_url: str) -> None:
    done = tracker(empty_database_url, "verify")
    assert done.returncode == 1
    assert done.stderr.strip().startswith("verify: this database holds no hash-chained log")
    assert "run tracker migrate first" in done.stderr
    conn = await asyncpg.connect(empty_database_url)
    try:
        assert await conn.fetchval("SELECT to_regclass('schema_migrations')") is None
        assert (
            await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
        )
    finally:
        await conn.close()


async def test_a_role_that_may_only_select_can_verify(
    database_url: str, examples: dict[str, bytes]
) -> None:
    database = await Database.open(database_url, timeout=10, size=1)
    try:
        async with database.transaction("append") as conn:
            await ingestion.ingest(
                conn, [decode(raw) for raw in examples.values()], datetime.now(UTC)
            )
    finally:
        await database.close()
    role = f"t_verifier_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        done = tracker(as_role(database_url, role), "verify")
        assert done.returncode == 0, done.stdout + done.stderr
        # The four device examples share one device: two streams, with the task's.
        assert done.stdout.strip() == "verify: 5 events in 2 streams; every hash chain is intact"
    finally:
        await conn.execute(f"DROP OWNED BY {role}")
        await conn.execute(f"DROP ROLE {role}")
        await conn.close()
