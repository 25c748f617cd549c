"""Writing guards (the admin API, `tracker guards`): a definition in, and what it does to the
alerts it had. Replacing a guard resolves each of its firing alerts ("guard replaced", told to
its new webhook) and reads those rollouts again at once under the new definition: what still
holds fires again, as a new change its new receiver hears of. Deleting one resolves them
("guard deleted", told to nobody: its pending webhooks die with its secret). Its alerts' history
stays in the log either way."""

from __future__ import annotations

from datetime import UTC, datetime

from tracker.domain.guards import Definition, Guard
from tracker.store import alert_log, alerting, guards
from tracker.store.database import Database


async def put(db: Database, name: str, definition: Definition) -> tuple[Guard, bool]:
    """Create or replace the guard; True: created."""
    async with db.transaction("put guard") as conn:
        guard, created = await guards.write(conn, name, definition)
        ended = [] if created else await alert_log.end(conn, guard, "guard replaced", _now())
        if ended:
            rollouts = {(a.operation_id, a.track) for a in ended}
            await alerting.evaluate(conn, rollouts, [guard], timed=True)
    if ended:
        await alert_log.announce(db)
    return guard, created


async def delete(db: Database, name: str) -> bool:
    """Remove the guard and resolve its firing alerts; False: there was no such guard."""
    async with db.transaction("delete guard") as conn:
        await alert_log.end(conn, name, "guard deleted", _now())
        return await guards.remove(conn, name)


def _now() -> datetime:
    return datetime.now(UTC)
