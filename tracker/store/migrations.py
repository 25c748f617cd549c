"""Apply the numbered SQL files in sql/ exactly once each, safely from many processes at once."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tracker.store.database import Connection

log = logging.getLogger(__name__)

# Session-level advisory lock: concurrent `tracker serve` starts queue here instead of racing.
MIGRATION_LOCK = 0x7472_6B6D_6967  # "trkmig"
_NAME = re.compile(r"(\d{3,})_[\w-]+\.sql")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED = "SELECT version FROM schema_migrations"
# A migration may rewrite a big table (004 chains every logged event): it is not bounded by the
# per-request database timeout, or it would be cancelled and retried for ever.
MIGRATION_SECONDS = 24 * 3600.0
RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"


# A migration that replaces projection tables starts with this line: the tables it leaves are
# empty, and only the reducers (Python) can fill them from the log, so `migrate` then rebuilds.
REBUILDS = "-- tracker: rebuild projections"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def rebuilds_projections(self) -> bool:
        return self.sql.startswith(REBUILDS)


def sql_dir() -> Path:
    """sql/ inside the installed wheel, else the repository's sql/ (editable installs)."""
    packaged = Path(str(resources.files("tracker"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


def available(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise RuntimeError(f"migration file name must be NNN_name.sql: {path}")
        found.append(Migration(int(match[1]), path.name, path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version number in {directory}")
    return found


async def migrate(
    conn: Connection,
    directory: Path | None = None,
    rebuild: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied.

    If one of them asks for it, `rebuild` (the projections) runs before the migration lock is
    released, so another process starting meanwhile waits instead of serving empty tables.
    """
    pending = available(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        # Only when missing: a runtime role may check for migrations, but not create tables.
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            await conn.execute(CREATE_LEDGER)
        done = {row["version"] for row in await conn.fetch(APPLIED)}
        for migration in pending:
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql, timeout=MIGRATION_SECONDS)
                await conn.execute(RECORD, migration.version, migration.name)
            log.info("applied migration %s", migration.name)
            applied_now.append(migration.name)
        if rebuild and any(m.rebuilds_projections for m in pending if m.name in applied_now):
            await rebuild()
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now
