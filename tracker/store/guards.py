"""The guards' definitions (sql/021_guards.sql) and their webhooks' secrets (020): what the
admin API writes and every evaluation reads. Configuration, not history: nothing here is in the
log, and replay never reads it (the alerts are folded from their own events)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import TypeAdapter

from tracker.domain.guards import Condition, Definition, Guard, Scope
from tracker.store.database import Connection, Database, Record

COLUMNS = "name, definition, created_at, updated_at"
ALL = f"SELECT {COLUMNS} FROM guards ORDER BY name"  # noqa: S608 - constants
ONE = f"SELECT {COLUMNS} FROM guards WHERE name = $1"  # noqa: S608
PUT = f"""
INSERT INTO guards (name, definition, created_at, updated_at)
VALUES ($1, $2::jsonb, now(), now())
ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, updated_at = now()
RETURNING {COLUMNS}, (xmax = 0) AS created
"""  # noqa: S608
SIGNER_UPSERT = """
INSERT INTO webhook_secrets (name, secret, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET secret = EXCLUDED.secret, updated_at = now()
"""
SIGNER_DELETE = "DELETE FROM webhook_secrets WHERE name = $1"
DELETE = "DELETE FROM guards WHERE name = $1 RETURNING name"

_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def stored(definition: Definition) -> bytes:
    """The definition as kept: everything but the secret."""
    document: dict[str, Any] = {
        "scope": definition.scope.model_dump(exclude_none=True),
        "when": definition.when.model_dump(),
        "webhook": None if definition.webhook is None else {"url": definition.webhook.url},
        "stop_task": definition.stop_task,
    }
    return orjson.dumps(document)


def _guard(row: Record) -> Guard:
    document = orjson.loads(row["definition"])
    webhook = document.get("webhook")
    return Guard(
        name=row["name"],
        scope=Scope.model_validate(document.get("scope") or {}),
        when=_CONDITION.validate_python(document["when"]),
        webhook_url=None if webhook is None else webhook["url"],
        stop_task=bool(document.get("stop_task")),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def all_guards(conn: Connection) -> list[Guard]:
    """Every guard, inside the caller's transaction (an evaluation's)."""
    return [_guard(row) for row in await conn.fetch(ALL)]


async def listed(db: Database) -> list[Guard]:
    return [_guard(row) for row in await db.fetch("read guards", ALL)]


async def one(db: Database, name: str) -> Guard | None:
    row = await db.fetchrow("read guard", ONE, name)
    return None if row is None else _guard(row)


async def write(conn: Connection, name: str, definition: Definition) -> tuple[Guard, bool]:
    """Create or replace the guard with its secret, in the caller's transaction; True:
    created (store/guard_changes.py ends a replaced guard's alerts)."""
    row = await conn.fetchrow(PUT, name, stored(definition).decode())
    if definition.webhook is not None:
        await conn.execute(SIGNER_UPSERT, name, definition.webhook.secret)
    else:
        await conn.execute(SIGNER_DELETE, name)
    assert row is not None  # noqa: S101 - an upsert returns its row
    return _guard(row), bool(row["created"])


async def remove(conn: Connection, name: str) -> bool:
    """Remove the guard and its secret, in the caller's transaction. False: none such."""
    gone = await conn.fetchrow(DELETE, name)
    await conn.execute(SIGNER_DELETE, name)
    return gone is not None
