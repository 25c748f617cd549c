"""Reading the alerts (the `alerts` projection, folded from the log's alert events): latest
firing first, by state, by rollout, or by guard; keyset pages over the index that matches."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from tracker.domain.guards import Alert
from tracker.store.database import Database
from tracker.store.rows import ALERTS

Key = tuple[datetime, str, str, str]  # (fired_at, guard, operation_id, track), descending


class AlertFilter(NamedTuple):
    state: str | None = None
    operation_id: str | None = None
    guard: str | None = None


def _listing(where: AlertFilter, after: Key | None) -> tuple[str, list[object]]:
    clauses, args = [], []
    for column, value in where._asdict().items():
        if value is not None:
            args.append(value)
            clauses.append(f"{column} = ${len(args)}")
    if after is not None:
        first = len(args) + 1
        args += list(after)
        clauses.append(
            f'(fired_at, guard, operation_id COLLATE "C", track) < '
            f'(${first}, ${first + 1}, ${first + 2} COLLATE "C", ${first + 3})'
        )
    where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return where_sql, args


async def listed(
    db: Database, where: AlertFilter, after: Key | None, limit: int
) -> tuple[list[Alert], Key | None]:
    """A page of alerts, the latest fired first, and the key to resume after (None: last)."""
    where_sql, args = _listing(where, after)
    query = (
        f"SELECT * FROM alerts {where_sql} "  # noqa: S608 - columns are constants, values are args
        f'ORDER BY fired_at DESC, guard DESC, operation_id COLLATE "C" DESC, track DESC '
        f"LIMIT ${len(args) + 1}"
    )
    rows = await db.fetch("list alerts", query, *args, limit)
    found = [ALERTS.from_row(row) for row in rows]
    if len(found) < limit:
        return found, None
    last = found[-1]
    return found, (last.fired_at, last.guard, last.operation_id, last.track)


COUNTS = "SELECT state, count(*) AS alerts FROM alerts GROUP BY state"


async def counts(db: Database) -> dict[str, int]:
    """Alerts by state, for /metrics."""
    return {row["state"]: row["alerts"] for row in await db.fetch("count alerts", COUNTS)}
