"""The projection tables the DDL creates are exactly the ones the store derives from the domain's
row types: same columns, in the same order, same types, same nullability."""

from __future__ import annotations

import asyncpg
import pytest

from tracker.store.rows import ALL_TABLES

# information_schema's names for the types rows.py casts to.
SPELLED = {
    "text": "text",
    "bigint": "bigint",
    "boolean": "boolean",
    "timestamptz": "timestamp with time zone",
    "jsonb": "jsonb",
}
COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable = 'YES' AS nullable
FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position
"""


async def columns_in(
    conn: asyncpg.Connection, schema: str
) -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for row in await conn.fetch(COLUMNS, schema):
        found.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["nullable"])
        )
    return found


@pytest.mark.parametrize("where", ["live", "scratch"])
async def test_the_ddl_creates_the_declared_columns(database_url: str, where: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        schema = "public"
        if where == "scratch":  # what replay builds and swaps in
            schema = "scratch_for_test"
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.execute("SELECT tracker_create_projections($1)", schema)
        found = await columns_in(conn, schema)
    finally:
        await conn.close()
    for table in ALL_TABLES:
        declared = [(c.name, SPELLED[c.type], c.nullable) for c in table.columns]
        assert found.get(table.name) == declared, table.name
    if where == "scratch":
        assert set(found) == {t.name for t in ALL_TABLES}  # and nothing else


async def test_every_declared_key_is_the_primary_key(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        for table in ALL_TABLES:
            key = await conn.fetchval(
                """
                SELECT array_agg(a.attname ORDER BY k.n)
                FROM pg_index i
                CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
                JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                WHERE i.indrelid = $1::regclass AND i.indisprimary
                """,
                table.name,
            )
            assert tuple(key) == table.key, table.name
    finally:
        await conn.close()
