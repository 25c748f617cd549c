"""The schema is what sql/ states, however a database got there.

- The projection tables the DDL creates are exactly the ones the store derives from the domain's
  row types: same columns, in the same order, same types, same nullability, same keys; and the
  live tables are the ones replay builds in its scratch schema, indexes and collations included.
- A database migrated in two steps, from a state older versions left behind, ends identical to
  a fresh one: tables, columns, constraints, indexes, triggers, functions, grants.
- `migrate` applies each definition (sql/definitions/) again only when its file changed, and
  does nothing at all, nothing that needs a privilege, when nothing did.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest

from testkit.postgres import create_database, drop_database, with_database
from tests.support.postgres import as_role
from tracker.store.migrations import REBUILDS, available, definitions, migrate, sql_dir
from tracker.store.roles import set_up_runtime_role
from tracker.store.rows import ALL_TABLES

# information_schema's names for the types rows.py casts to.
SPELLED = {
    "text": "text",
    "bigint": "bigint",
    "double precision": "double precision",
    "boolean": "boolean",
    "timestamptz": "timestamp with time zone",
    "jsonb": "jsonb",
}
COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable = 'YES' AS nullable
FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position
"""

# What a schema ($1) holds, object by object, the table first where there is one: enough to
# tell two schemas apart wherever migrate decides something.
CATALOG = {
    "schema": """
        SELECT pg_get_userbyid(n.nspowner), n.nspacl::text
        FROM pg_namespace n WHERE n.nspname = $1""",
    "relations": """
        SELECT c.relname, c.relkind::text, c.relpersistence::text, pg_get_userbyid(c.relowner),
               c.relacl::text, c.reloptions::text
        FROM pg_class c WHERE c.relnamespace = $1::regnamespace
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""",
    "columns": """
        SELECT c.relname, a.attnum, a.attname, a.attisdropped,
               format_type(a.atttypid, a.atttypmod), co.collname, a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text,
               a.attacl::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = $1::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0""",
    "constraints": """
        SELECT c.relname, k.conname, k.contype::text, pg_get_constraintdef(k.oid),
               k.convalidated, k.condeferrable
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
        WHERE c.relnamespace = $1::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1",
    "statistics": """
        SELECT c.relname, s.stxname, pg_get_statisticsobjdef(s.oid),
               pg_get_userbyid(s.stxowner)
        FROM pg_statistic_ext s JOIN pg_class c ON c.oid = s.stxrelid
        WHERE s.stxnamespace = $1::regnamespace""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_functiondef(p.oid),
               p.prosecdef, p.proconfig::text, pg_get_userbyid(p.proowner), p.proacl::text
        FROM pg_proc p WHERE p.pronamespace = $1::regnamespace""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, increment_by, max_value, min_value,
               cache_size, cycle
        FROM pg_sequences WHERE schemaname = $1""",
}
# What the ledgers record (not when): which migrations and which definitions a database has.
LEDGERS = {
    "migrations": "SELECT version, name FROM schema_migrations",
    "definitions": "SELECT name, sha256 FROM schema_definitions",
}
DEFINED_AT = "SELECT name, applied_at FROM schema_definitions"
# A statement that defines a function or a trigger, and what it defines.
DEFINES = re.compile(
    r"^\s*(?:CREATE (?:OR REPLACE )?|ALTER )(FUNCTION|TRIGGER) (\w+)", re.MULTILINE | re.IGNORECASE
)
GRANTED_IN = """
SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
"""

Catalog = dict[str, list[tuple[object, ...]]]


async def catalog(
    conn: asyncpg.Connection, schema: str = "public", tables: set[str] | None = None
) -> Catalog:
    """Every object of `schema` (of `tables` alone, if given), sorted, its name taken out."""
    found: Catalog = {}
    for kind, sql in CATALOG.items():
        rows = [tuple(row) for row in await conn.fetch(sql, schema)]
        if tables is not None:
            if kind in ("schema", "functions", "sequences"):
                continue
            rows = [row for row in rows if row[0] in tables]
        found[kind] = sorted(
            (tuple(_unqualified(value, schema) for value in row) for row in rows), key=repr
        )
    return found


def _unqualified(value: object, schema: str) -> object:
    return value.replace(f"{schema}.", "") if isinstance(value, str) else value


async def defined_at(conn: asyncpg.Connection) -> dict[str, datetime]:
    """When each definition was last applied."""
    return {row["name"]: row["applied_at"] for row in await conn.fetch(DEFINED_AT)}


async def ledgers(conn: asyncpg.Connection) -> Catalog:
    return {kind: sorted(tuple(r) for r in await conn.fetch(sql)) for kind, sql in LEDGERS.items()}


async def columns_in(
    conn: asyncpg.Connection, schema: str
) -> dict[str, list[tuple[str, str, bool]]]:
    found: dict[str, list[tuple[str, str, bool]]] = {}
    for row in await conn.fetch(COLUMNS, schema):
        found.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["nullable"])
        )
    return found


@pytest.fixture
def other_url(postgres_server: str) -> Iterator[str]:
    """A second fresh, empty database, to compare with the first."""
    url = create_database(postgres_server)
    yield url
    drop_database(url)


@pytest.fixture
def runtime_role(postgres_server: str) -> Iterator[str]:
    """A name for the runtime role; the role is dropped afterwards, with its grants in every
    database of the server."""
    role = f"tracker_rt_{secrets.token_hex(4)}"
    yield role

    async def drop() -> None:
        conn = await asyncpg.connect(postgres_server)
        try:
            granted_in = await conn.fetch(GRANTED_IN, role)
        finally:
            await conn.close()
        for row in granted_in:
            conn = await asyncpg.connect(with_database(postgres_server, row["datname"]))
            try:
                await conn.execute(f'DROP OWNED BY "{role}"')
            finally:
                await conn.close()
        conn = await asyncpg.connect(postgres_server)
        try:
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await conn.close()

    asyncio.run(drop())


def numbered_before(version: str, tmp_path: Path) -> Path:
    """A copy of the numbered migrations before `version`, without the definitions: the tables
    as a database that stopped there has them (its functions were its own version's)."""
    older = tmp_path / "older"
    older.mkdir()
    for path in sql_dir().glob("*.sql"):
        if path.name < version:
            shutil.copy(path, older / path.name)
    return older


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


async def test_the_live_projections_are_what_replay_builds(database_url: str) -> None:
    """Columns (types, collations, defaults, nullability), constraints, indexes and statistics
    of the live tables equal those of a scratch build, the tables replay swaps in."""
    tables = {t.name for t in ALL_TABLES}
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CREATE SCHEMA scratch_for_test")
        await conn.execute("SELECT tracker_create_projections('scratch_for_test')")
        await conn.execute("SELECT tracker_index_projections('scratch_for_test')")
        live = await catalog(conn, "public", tables)
        scratch = await catalog(conn, "scratch_for_test", tables)
    finally:
        await conn.close()
    for kind in ("relations", "columns", "constraints", "indexes", "statistics"):
        assert live[kind] == scratch[kind], kind
    assert {row[0] for row in live["relations"]} == tables
    assert ("operation_devices", "device_id") in {(r[0], r[2]) for r in live["columns"] if r[5]}
    assert any('COLLATE "C"' in str(row[2]) for row in live["indexes"])  # the lists' order
    assert live["statistics"]


async def test_a_database_migrated_in_two_steps_ends_as_a_fresh_one(
    empty_database_url: str, other_url: str, runtime_role: str, tmp_path: Path
) -> None:
    """Step one stops before 015 with what older versions left there: projection tables of an
    older shape, functions by signatures since replaced, a runtime role granted on them. Step
    two is today's `migrate`, which must drop, define and grant what a fresh database has."""
    fresh = await asyncpg.connect(empty_database_url)
    stepped = await asyncpg.connect(other_url)
    try:
        await migrate(fresh)
        await set_up_runtime_role(fresh, runtime_role, None)

        await migrate(stepped, numbered_before("015", tmp_path))
        assert await stepped.fetchval("SELECT count(*) FROM schema_definitions") == 0
        for table in (
            "devices", "device_tracks", "device_transitions", "operation_devices", "operations",
            "operation_errors", "operation_versions", "operation_activity", "tasks",
            "task_transitions",
        ):  # fmt: skip
            await stepped.execute(f"CREATE TABLE {table} (shape_of_an_older_version text)")
        await stepped.execute(
            "CREATE FUNCTION tracker_create_projections(target name) RETURNS void "
            "LANGUAGE sql AS ''"
        )
        await stepped.execute(
            "CREATE FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], bytea[], "
            "smallint[], timestamptz[], timestamptz[], bigint[]) RETURNS SETOF bigint "
            "LANGUAGE sql AS 'SELECT 1::bigint'"
        )
        await stepped.execute("INSERT INTO runtime_role (role_name) VALUES ($1)", runtime_role)
        await stepped.execute(f"GRANT SELECT, INSERT ON devices TO {runtime_role}")
        await stepped.execute(
            "GRANT EXECUTE ON FUNCTION tracker_append(bigint, text[], text[], text[], bytea[], "
            f"bytea[], smallint[], timestamptz[], timestamptz[], bigint[]) TO {runtime_role}"
        )
        assert "015_arrival_order.sql" in await migrate(stepped)  # and grants: no CLI needed

        assert await catalog(stepped) == await catalog(fresh)
        assert await ledgers(stepped) == await ledgers(fresh)
    finally:
        await fresh.close()
        await stepped.close()


async def test_migrating_again_does_nothing_and_needs_no_privilege(
    database_url: str, runtime_role: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await set_up_runtime_role(conn, runtime_role, "runtime-password")
        before = await defined_at(conn)
        assert len(before) == len(definitions())
        assert await migrate(conn) == []
        assert await defined_at(conn) == before
    finally:
        await conn.close()
    runtime = await asyncpg.connect(as_role(database_url, runtime_role, "runtime-password"))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # it may define nothing...
            await runtime.execute(
                "CREATE OR REPLACE FUNCTION tracker_horizon() RETURNS bigint "
                "LANGUAGE sql AS 'SELECT 0::bigint'"
            )
        assert await migrate(runtime) == []  # ...and has nothing to define
        assert await defined_at(runtime) == before
    finally:
        await runtime.close()


async def test_a_changed_definition_is_applied_again_alone_with_the_grants(
    database_url: str, tmp_path: Path
) -> None:
    copy = tmp_path / "sql"
    shutil.copytree(sql_dir(), copy)
    micros = copy / "definitions" / "10_tracker_micros.sql"
    text = micros.read_text()
    micros.write_text(text.replace("-- 0001-01-01T00:00:00Z", "-- 0001-01-01T00:00:00Z, year 1"))
    conn = await asyncpg.connect(database_url)
    try:
        before = await defined_at(conn)
        assert await migrate(conn, copy) == []
        after = await defined_at(conn)
        source = await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'tracker_micros'")
        assert await migrate(conn, copy) == []
        assert await defined_at(conn) == after  # applied once, then nothing
    finally:
        await conn.close()
    assert {name for name in after if after[name] != before[name]} == {
        "10_tracker_micros.sql",
        "90_tracker_grant_runtime.sql",  # `-- tracker: apply after any change`
    }
    assert "year 1" in source


async def test_a_migration_that_replaces_the_projections_gets_them_back_granted(
    database_url: str, runtime_role: str, tmp_path: Path
) -> None:
    """The way a projection table changes: a new migration drops them all and asks for a
    rebuild; the definitions, unchanged, are applied again and create them as they are now."""
    copy = tmp_path / "sql"
    shutil.copytree(sql_dir(), copy)
    tables = ", ".join(t.name for t in ALL_TABLES)
    (copy / "999_replace.sql").write_text(f"{REBUILDS}\nDROP TABLE {tables};\n")
    rebuilt: list[bool] = []

    async def rebuild() -> None:
        rebuilt.append(True)

    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        await set_up_runtime_role(conn, runtime_role, None)
        before = await catalog(conn)
        assert await migrate(conn, copy, rebuild) == ["999_replace.sql"]
        after = await catalog(conn)
    finally:
        await conn.close()
    assert after == before
    assert rebuilt == [True]


def test_definitions_apply_in_a_stated_order_and_migrations_define_nothing() -> None:
    """SQL functions after those they call (PostgreSQL checks their bodies when they are
    created), the grants last; no numbered migration defines a function or a trigger, and each
    object sql/definitions/ creates is created in one file only."""
    names = [d.name for d in definitions()]
    calls = [
        ("10_tracker_micros.sql", "11_tracker_link.sql"),
        ("12_tracker_append_kept.sql", "13_tracker_append.sql"),
        ("13_tracker_append.sql", "90_tracker_grant_runtime.sql"),
        ("30_projections.sql", "90_tracker_grant_runtime.sql"),
    ]
    for callee, caller in calls:
        assert names.index(callee) < names.index(caller)
    assert names[-1] == "90_tracker_grant_runtime.sql"
    for migration in available():
        assert DEFINES.search(migration.sql) is None, migration.name
    created = [m.groups() for d in definitions() for m in DEFINES.finditer(d.sql)]
    assert len(created) == len(set(created)), created
