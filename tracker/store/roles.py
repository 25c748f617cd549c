"""The runtime role: what `tracker serve` needs on the database, and nothing more."""

from __future__ import annotations

from tracker.store.database import Connection

RECORD = """
INSERT INTO runtime_role (role_name) VALUES ($1)
ON CONFLICT (only_row) DO UPDATE SET role_name = EXCLUDED.role_name
"""


async def set_up_runtime_role(conn: Connection, role: str, password: str | None) -> bool:
    """Create `role` if missing (LOGIN, with `password` if given), record it and grant it.

    Returns whether the role was created. An existing role keeps its password unless one is
    given. The grants are re-applied by `tracker replay` whenever it swaps in new tables.
    """
    async with conn.transaction():
        exists = await conn.fetchval("SELECT true FROM pg_roles WHERE rolname = $1", role)
        # Role names and passwords cannot be parameters of CREATE/ALTER ROLE: PostgreSQL quotes.
        if not exists:
            await conn.execute(
                await conn.fetchval("SELECT format('CREATE ROLE %I LOGIN', $1::text)", role)
            )
        if password is not None:
            await conn.execute(
                await conn.fetchval(
                    "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)", role, password
                )
            )
        await conn.execute(RECORD, role)
        await conn.execute("SELECT tracker_grant_runtime()")
    return not exists
