"""The outbox's SQL (sql/020_webhook_outbox.sql): what the alert code writes, what the deliverer
claims and records, and what people read and retry.

Ordering. Rows of one ordering key (a rollout) go in `seq` order, and a row is claimed only when
no earlier row of its key is pending (`CLAIM`): a later change waits while an earlier one is
retrying. `seq` is drawn when the row is inserted, before commit, so two transactions could
commit one key's rows out of `seq` order and the deliverer would send the later change first,
or send it before the earlier one is even visible. `enqueue` therefore takes a transaction-scoped
advisory lock on the key before the row is inserted: a second writer of the key waits until the
first commits, so within a key `seq` order is commit order. (Keys of different rollouts may share
a lock's hash; they then merely wait for each other.) A dead letter no longer holds its key back.

Claiming. A claim is one statement: the due heads, `FOR UPDATE SKIP LOCKED` (several processes
may deliver at once, none waits for another's rows), get `next_at` pushed a lease ahead, which
hides them from every other claim while the POST is in flight and returns them if this process
dies mid-delivery (the receiver may then get the change twice: delivery is at least once). No
transaction stays open across a POST.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.store.database import Connection, Database
from tracker.store.errors import NotFound

CHANNEL = "tracker_webhooks"

LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended('tracker_webhooks:' || $1, 0))"
ENQUEUE = """
INSERT INTO webhook_outbox (id, ordering, url, secret_ref, body, created_at, next_at, state)
VALUES ($1, $2, $3, $4, $5, now(), now(), 'pending')
ON CONFLICT (id) DO NOTHING
"""
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
CLAIM = """
WITH due AS (
    SELECT id FROM webhook_outbox o
    WHERE state = 'pending' AND next_at <= now()
      AND NOT EXISTS (SELECT FROM webhook_outbox e
                      WHERE e.ordering = o.ordering AND e.state = 'pending' AND e.seq < o.seq)
    ORDER BY next_at, seq
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_outbox o SET next_at = now() + make_interval(secs => $2)
FROM due WHERE o.id = due.id
RETURNING o.id, o.ordering, o.url, o.body, o.attempts,
          (SELECT secret FROM webhook_secrets s WHERE s.name = o.secret_ref) AS secret,
          o.secret_ref
"""
DELIVERED = """
UPDATE webhook_outbox SET state = 'delivered', delivered_at = now(), attempts = attempts + 1,
                          last_error = NULL
WHERE id = $1 AND state = 'pending' AND attempts = $2
"""
# A failed attempt: due again after the backoff ($3 seconds), or dead once the give-up time
# ($4 seconds after the change, or after its last retry) has passed.
FAILED = """
UPDATE webhook_outbox
SET attempts = attempts + 1, last_error = left($3, 1000),
    state = CASE WHEN now() >= coalesce(retried_at, created_at) + make_interval(secs => $5)
                 THEN 'dead' ELSE 'pending' END,
    next_at = now() + make_interval(secs => $4)
WHERE id = $1 AND state = 'pending' AND attempts = $2
RETURNING state
"""
RETRY = """
UPDATE webhook_outbox SET state = 'pending', next_at = now(), retried_at = now()
WHERE id = $1 AND state = 'dead'
"""
DEAD = """
SELECT seq, id, ordering, url, secret_ref, created_at, attempts, last_error, next_at
FROM webhook_outbox WHERE state = 'dead' AND seq > $1 ORDER BY seq LIMIT $2
"""
# How many rows are pending, and in how many seconds the first head of a key is due (negative:
# overdue; null: none), so a retry waits for its backoff and not for the next poll.
OUTLOOK = """
SELECT count(*) AS pending,
       extract(epoch FROM min(next_at) FILTER (WHERE NOT EXISTS (
           SELECT FROM webhook_outbox e
           WHERE e.ordering = o.ordering AND e.state = 'pending' AND e.seq < o.seq)) - now())
       AS soonest
FROM webhook_outbox o WHERE state = 'pending'
"""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One alert change to send: what the alert code enqueues."""

    id: str  # unique per change, also in the body
    ordering: str  # changes with the same key are sent in order (the rollout)
    url: str  # checked by targets.check when the guard was written
    secret_ref: str  # the webhook_secrets row that signs it
    body: bytes  # the exact JSON bytes to send


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row claimed for one attempt; `attempts` as claimed, so a late answer changes nothing
    once another process has taken the row over."""

    id: str
    ordering: str
    url: str
    body: bytes
    attempts: int
    secret: bytes | None  # None: no secret of that name (any more)
    secret_ref: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int  # the page's key: pass the last one as `after`
    id: str
    ordering: str
    url: str
    secret_ref: str
    created_at: datetime
    attempts: int
    last_error: str | None
    died_at: datetime  # when its last attempt failed, about


async def enqueue(conn: Connection, row: Outgoing) -> bool:
    """Insert `row` inside the caller's transaction and wake the deliverers when it commits (a
    rollback sends nothing). False: a row of that id was enqueued before."""
    await conn.execute(LOCK_KEY, row.ordering)
    status = await conn.execute(ENQUEUE, row.id, row.ordering, row.url, row.secret_ref, row.body)
    await conn.execute(NOTIFY)  # delivered at commit, never on rollback
    return bool(status.endswith(" 1"))


async def retry(db: Database, id: str) -> None:  # noqa: A002 - the row's name for it
    """A dead letter back to pending, due now, with a fresh give-up time; `NotFound` if no dead
    letter has that id."""
    async with db.transaction("retry a webhook") as conn:
        status = await conn.execute(RETRY, id)
        if status.endswith(" 0"):
            raise NotFound(f"no dead webhook delivery {id!r}")
        await conn.execute(NOTIFY)


async def dead_letters(db: Database, after: int = 0, limit: int = 100) -> list[DeadLetter]:
    """Dead letters after `seq` `after`, oldest first, at most `limit`."""
    rows = await db.fetch("list dead webhooks", DEAD, after, limit)
    return [
        DeadLetter(
            seq=row["seq"],
            id=row["id"],
            ordering=row["ordering"],
            url=row["url"],
            secret_ref=row["secret_ref"],
            created_at=row["created_at"],
            attempts=row["attempts"],
            last_error=row["last_error"],
            died_at=row["next_at"],
        )
        for row in rows
    ]


async def outlook(db: Database) -> tuple[int, float | None]:
    """Rows pending, and seconds until the first head of a key is due (None: none pending)."""
    row = await db.fetchrow("look at pending webhooks", OUTLOOK)
    if row is None:
        return 0, None
    soonest = row["soonest"]
    return int(row["pending"]), None if soonest is None else float(soonest)


async def claim(db: Database, limit: int, lease: float) -> list[Claimed]:
    """Up to `limit` due heads of their keys, hidden from other claims for `lease` seconds."""
    rows = await db.fetch("claim webhooks", CLAIM, limit, lease)
    return [
        Claimed(
            id=row["id"],
            ordering=row["ordering"],
            url=row["url"],
            body=bytes(row["body"]),
            attempts=row["attempts"],
            secret=None if row["secret"] is None else row["secret"].encode(),
            secret_ref=row["secret_ref"],
        )
        for row in rows
    ]


async def delivered(db: Database, row: Claimed) -> None:
    await db.fetch("record a webhook delivered", DELIVERED, row.id, row.attempts)


async def failed(db: Database, row: Claimed, error: str, delay: float, give_up: float) -> str:
    """Record a failed attempt; the row's state after it ('pending', 'dead', or '' when another
    process had taken it over)."""
    found = await db.fetchrow(
        "record a webhook failure", FAILED, row.id, row.attempts, error, delay, give_up
    )
    return "" if found is None else str(found["state"])
