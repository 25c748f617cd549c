"""Bring a database's schema to this version, safely from many processes at once.

sql/ holds two kinds of file, applied by `migrate` in this order under one advisory lock:

1. **Numbered migrations**, sql/NNN_name.sql: each runs once, in its own transaction, and is
   recorded in `schema_migrations` by its version. They create and alter tables and backfill
   them; they define no function or trigger and call none of sql/definitions/, because at their
   point those may be absent (a fresh database) or an older version's (an upgrade). A backfill
   that needs a computation states it inline (004 chains the log in a DO block).
2. **Definitions**, sql/definitions/NN_name.sql: the current text of every function, every
   trigger with its trigger function, the projection DDL and the runtime role's grants, one file
   each, applied in file-name order (functions before what calls them; the grants last). Each
   is idempotent (CREATE OR REPLACE; DROP ... IF EXISTS then CREATE for a trigger or an old
   signature). `schema_definitions` records the sha256 of each file as applied; `migrate`
   applies, in one transaction:
   - every definition, when any migration was applied just before (it may have dropped or
     added what a definition stands on: a table a trigger or a grant names, projection tables);
   - otherwise only the files whose sha256 differs from the recorded one, then those that say
     `-- tracker: apply after any change` (the grants: an object created again has lost its);
   - nothing at all when nothing changed: a runtime role without any privilege but to read the
     two ledgers may run `migrate` to check.

Projection tables are derived from the log, so they are not migrated in place: a migration that
changes one starts with `-- tracker: rebuild projections` and drops them all; the definitions
(sql/definitions/30_projections.sql creates whatever tables are absent, as they are now) follow,
then `rebuild` fills them from the log before the lock is released.
"""

from __future__ import annotations

import hashlib
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
_DEFINITION_NAME = re.compile(r"\d{2}_[\w-]+\.sql")
DEFINITIONS = "definitions"  # the folder of sql/ they live in

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
CREATE_DEFINITIONS_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_definitions (
    name        text        PRIMARY KEY,  -- its file, in sql/definitions/
    sha256      text        NOT NULL,     -- of the file as applied, in hex
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
APPLIED = "SELECT version FROM schema_migrations"
DEFINED = "SELECT name, sha256 FROM schema_definitions"
# A migration may rewrite a big table (004 chains every logged event): it is not bounded by the
# per-request database timeout, or it would be cancelled and retried for ever.
MIGRATION_SECONDS = 24 * 3600.0
RECORD = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
RECORD_DEFINITION = """
INSERT INTO schema_definitions (name, sha256) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()
"""
FORGET_DEFINITIONS = "DELETE FROM schema_definitions WHERE NOT name = ANY($1::text[])"


# A migration that replaces projection tables starts with this line: it drops them, the
# definitions create them empty, and only the reducers (Python) can fill them from the log, so
# `migrate` then rebuilds.
REBUILDS = "-- tracker: rebuild projections"
# A definition that starts with this line is applied whenever any other is.
AFTER_ANY_CHANGE = "-- tracker: apply after any change"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def rebuilds_projections(self) -> bool:
        return self.sql.startswith(REBUILDS)


@dataclass(frozen=True, slots=True)
class Definition:
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def after_any_change(self) -> bool:
        return self.sql.startswith(AFTER_ANY_CHANGE)


def sql_dir() -> Path:
    """sql/ inside the installed wheel, else the repository's sql/ (editable installs)."""
    packaged = Path(str(resources.files("tracker"))) / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "sql"


def available(directory: Path | None = None) -> list[Migration]:
    """The numbered migrations of `directory` (sql/ by default), by version."""
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


def definitions(directory: Path | None = None) -> list[Definition]:
    """The definitions of `directory`/definitions/, in the order they apply (none if absent)."""
    folder = (directory or sql_dir()) / DEFINITIONS
    found = []
    for path in sorted(folder.glob("*.sql")):
        if _DEFINITION_NAME.fullmatch(path.name) is None:
            raise RuntimeError(f"definition file name must be NN_name.sql: {path}")
        found.append(Definition(path.name, path.read_text(encoding="utf-8")))
    return found


async def migrate(
    conn: Connection,
    directory: Path | None = None,
    rebuild: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """Apply pending migrations, each in its own transaction, then the definitions that are due
    (see the top of this module); return the names of the migrations applied.

    If one of them asks for it, `rebuild` (the projections) runs before the migration lock is
    released, so another process starting meanwhile waits instead of serving empty tables.
    """
    pending = available(directory)
    current = definitions(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        # Only when missing: a runtime role may check for migrations, but not create tables.
        if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
            await conn.execute(CREATE_LEDGER)
        if await conn.fetchval("SELECT to_regclass('schema_definitions')") is None:
            await conn.execute(CREATE_DEFINITIONS_LEDGER)
        done = {row["version"] for row in await conn.fetch(APPLIED)}
        for migration in pending:
            if migration.version in done:
                continue
            async with conn.transaction():
                if _has_statement(migration.sql):
                    await conn.execute(migration.sql, timeout=MIGRATION_SECONDS)
                await conn.execute(RECORD, migration.version, migration.name)
            log.info("applied migration %s", migration.name)
            applied_now.append(migration.name)
        await define(conn, current, everything=bool(applied_now))
        if rebuild and any(m.rebuilds_projections for m in pending if m.name in applied_now):
            await rebuild()
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now


async def define(conn: Connection, current: list[Definition], *, everything: bool) -> list[str]:
    """Apply the definitions that are due, in order, in one transaction; return their names.

    Runs under the migration lock (`migrate` holds it)."""
    recorded = {row["name"]: row["sha256"] for row in await conn.fetch(DEFINED)}
    changed = {d.name for d in current if everything or recorded.get(d.name) != d.sha256}
    if not changed:
        return []
    due = [d for d in current if d.name in changed or d.after_any_change]
    async with conn.transaction():
        for definition in due:
            await conn.execute(definition.sql, timeout=MIGRATION_SECONDS)
            await conn.execute(RECORD_DEFINITION, definition.name, definition.sha256)
        await conn.execute(FORGET_DEFINITIONS, [d.name for d in current])
    for definition in due:
        log.info("applied definition %s", definition.name)
    return [d.name for d in due]


def _has_statement(sql: str) -> bool:
    """Whether `sql` holds more than comments: a migration left with nothing to do still records
    its version (a database that applied it once says so), and asyncpg sends no empty query."""
    return any(line.strip() and not line.lstrip().startswith("--") for line in sql.splitlines())
