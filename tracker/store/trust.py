"""What `tracker serve` checks of the database before it serves, besides durability: that nobody
but the log's owner may create objects in its schema, and that the planner has statistics.

A role that may CREATE in the schema where the owner's SECURITY DEFINER functions resolve names
can put a function there that matches a call better than the built-in does, and it runs as the
owner (an outside review rewrote event 1 that way, with `public.cardinality(text[])`).
Migration 016 revokes the privilege from PUBLIC and the runtime role, but an operator or an old
database may grant it again: the server refuses to start while it is so.

Statistics: right after a bulk `tracker import` on a server whose autovacuum is off, list pages
took 440-500 ms where 5-7 ms is usual, until ANALYZE ran. Import ends with one; this warns
about the rest.
"""

from __future__ import annotations

import logging

from tracker.store.database import Connection, Database
from tracker.store.errors import unavailable_on_failure
from tracker.store.rows import ALL_TABLES

log = logging.getLogger(__name__)

# Who, besides the owner, could create in the schema: PUBLIC, the runtime role, and the role
# this session runs as when it is neither the owner nor a superuser.
CREATORS = """
SELECT who FROM (
    SELECT 'PUBLIC' AS who, has_schema_privilege('public', current_schema(), 'CREATE') AS may
    UNION ALL
    SELECT quote_ident(role_name), has_schema_privilege(role_name, current_schema(), 'CREATE')
    FROM runtime_role
    WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = role_name)
    UNION ALL
    SELECT quote_ident(current_user), has_schema_privilege(current_schema(), 'CREATE')
    WHERE NOT pg_has_role(current_user, (SELECT relowner FROM pg_class
                                         WHERE oid = 'events'::regclass), 'USAGE')
      AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
) AS c
WHERE may
"""
SCHEMA = "SELECT current_schema()"

AUTOVACUUM = "SELECT current_setting('autovacuum') = 'on'"
# Rows the statistics collector counted but the planner has never been told about.
LARGE_UNANALYSED = 10_000
UNANALYSED = """
SELECT relname, n_live_tup FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = ANY($1::text[])
  AND last_analyze IS NULL AND last_autoanalyze IS NULL AND n_live_tup >= $2
ORDER BY relname
"""


class UntrustedSchema(Exception):  # noqa: N818 - reads as "the schema is untrusted"
    """Someone other than the owner may create objects where the owner's functions look."""


async def refuse_untrusted_schema(db: Database) -> None:
    """`UntrustedSchema` if PUBLIC, the runtime role or this session's role may CREATE in the
    tracker's schema, with the statement that fixes it."""
    with unavailable_on_failure("check the schema's privileges"):
        async with db.pool.acquire() as conn:
            creators = [row["who"] for row in await conn.fetch(CREATORS)]
            schema = await conn.fetchval(SCHEMA)
    if creators:
        who = ", ".join(creators)
        raise UntrustedSchema(
            f"{who} may create objects in schema {schema!r}, where they could stand in for the "
            "functions the log's owner runs: refusing to serve; run "
            + "; ".join(f'REVOKE CREATE ON SCHEMA "{schema}" FROM {w}' for w in creators)
        )


async def warn_about_statistics(db: Database) -> list[str]:
    """Warn (and return the warnings) when autovacuum is off or a large projection table has
    never been analysed: reads would be planned blind."""
    with unavailable_on_failure("check the statistics"):
        async with db.pool.acquire() as conn:
            found = await _statistics(conn)
    for warning in found:
        log.warning("%s", warning)
    return found


async def _statistics(conn: Connection) -> list[str]:
    found = []
    if not await conn.fetchval(AUTOVACUUM):
        found.append(
            "autovacuum is off: nothing keeps the planner's statistics current, and list pages "
            "slow down by two orders of magnitude as the fleet grows; turn it on, or run "
            "ANALYZE after large imports"
        )
    names = ["events", *(table.name for table in ALL_TABLES)]
    found.extend(
        f"table {row['relname']} holds about {row['n_live_tup']:,} rows and has never been "
        "analysed: its reads are planned without statistics until ANALYZE runs"
        for row in await conn.fetch(UNANALYSED, names, LARGE_UNANALYSED)
    )
    return found
