"""The outbox's SQL (sql/020_webhook_outbox.sql, 022_outbox_heads.sql): what the alert code
writes, what the deliverer claims and records, and what people read and retry.

Ordering. Rows of one ordering key (a rollout) go in `seq` order: a row is claimed only when no
earlier row of its key is pending (`CLAIM`), so a later change waits while an earlier one is
retrying. `seq` is drawn when the row is inserted, before commit, so two transactions could
commit one key's rows out of `seq` order and the deliverer would send the later change first,
or send it before the earlier one is even visible. Every change to which rows of a key are
pending (enqueue, delivered, dead, retry) therefore first takes a transaction-scoped advisory
lock on the key (`LOCK_KEY`), in a statement of its own: a second writer of the key waits until
the first commits, so within a key `seq` order is commit order. (Keys of different rollouts
may share a lock's hash; they then merely wait for each other.) A dead letter no longer holds
its key back.

Heads and queued rows. Only the head of a key (its lowest pending `seq`) has a real `next_at`:
due, backing off, or leased. The rows behind it are queued, `next_at = 'infinity'`, so the claim,
walking the due index up to now, reads the due heads and never the rows waiting behind heads
that hang or back off; its cost does not grow with that backlog. Who keeps this so, each under
the key's lock (read committed: the statement after the lock sees what every earlier holder of
the lock committed):
- `enqueue` inserts the row queued if its key has a pending row, else due now;
- the statement that records a head delivered, or dead, makes the key's next row due now;
- `retry` puts a dead letter back at the end of its key's queue (a new `seq`): due now if its
  key has nothing pending, else queued. It is sent after every change of its key already
  pending: the head may be in flight, and sending the older change ahead of the queued ones
  would put two of the key's changes in flight at once. So a receiver may get an older change
  after a newer one (as it may after any dead letter): the body's `number` orders an alert's.
Without the lock, the promotion could miss a row whose transaction saw the head pending (so
queued it) and had not committed yet: the key would be stuck behind a head that is gone. Rows
written around these rules (a process of an earlier version during an upgrade, an edit by hand,
a bulk update) could still leave a key whose first pending row is queued: `unstick` finds such
keys, one index probe per key with pending rows (not per row), and the deliverer runs it now
and then. The order holds whatever the rows say: the claim still checks that each due row is
the first pending row of its key (one probe per due row).

Claiming. A claim is one statement: the due heads, `FOR UPDATE SKIP LOCKED` (several processes
may deliver at once, none waits for another's rows), get `next_at` pushed a lease ahead, which
hides them from every other claim while the POST is in flight and returns them if this process
dies mid-delivery (the receiver may then get the change twice: delivery is at least once). No
transaction stays open across a POST.

Skipping origins. A claim may be given origins (`ORIGIN`: the URL's scheme://host[:port]) to skip,
those its deliverer has as many attempts in flight to as it allows one: their due heads are
stepped over, neither leased nor changed, so they stay due in their place (hidden from no
claim) and the first claim that does not skip their origin takes them. Such a claim still reads
due heads and nothing else, but it reads those it steps over too, each at the cost of computing
its origin (string functions, a few µs: no index serves it), before and instead of its head's
probe. `SOONEST` skips them likewise. A claimed row comes with its origin, computed by the same
SQL, so the deliverer counts by what the claim compares.

Waking. Nothing here notifies inside a transaction: PostgreSQL serialises the commits of
notifying transactions (store/feed.py). After the transaction that enqueued commits, its caller
calls `announce`; the deliverers also wake on the live feed's NOTIFY, and poll.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from tracker.store.database import Connection, Database
from tracker.store.errors import NotFound, Unavailable

CHANNEL = "tracker_webhooks"

LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended('tracker_webhooks:' || $1, 0))"
# Every look at one key's pending rows below is written `ORDER BY ordering, seq LIMIT 1` over
# `ordering >= key` (or a row comparison): only webhook_outbox_ordering gives that order, so it
# is one probe of that index whatever the planner's statistics say. Written plainly (NOT EXISTS,
# `ordering = $1 ORDER BY seq`), it was planned, on a table that had grown since it was last
# analysed, as a walk of every pending row per due one, or of the whole table in seq order
# (delivered rows are kept: its history too). Likewise an update's check that a row is still
# queued is `NOT isfinite(next_at)`, which no index serves: `next_at = 'infinity'` was planned
# as a walk of the due index over every queued row.
#
# Queued when the key has a pending row already (the caller's own earlier ones included).
ENQUEUE = """
INSERT INTO webhook_outbox (id, ordering, url, secret_ref, body, created_at, next_at, state)
SELECT $1, $2, $3, $4, $5, now(),
       CASE WHEN (SELECT ordering FROM webhook_outbox WHERE state = 'pending' AND ordering >= $2
                  ORDER BY ordering, seq LIMIT 1) = $2
            THEN 'infinity' ELSE now() END,
       'pending'
ON CONFLICT (id) DO NOTHING
"""
NOTIFY = f"SELECT pg_notify('{CHANNEL}', '')"
# The origin of row `o`'s URL as deliverer.origin writes it (yarl's, for an ASCII host):
# scheme://host[:port], lowercased, without credentials (up to the authority's last '@'), path,
# query or fragment, or a default port. (A text that is not such a URL gives some key, always the
# same.) A deliverer caps its attempts in flight per origin: one receiver, however many guards and
# keys send to it. String functions, no regular expression: it is computed for every due head a
# claim steps over, and regexp_replace cost several times as much (about 15 µs a row against 3).
_SCHEME = "lower(split_part(o.url, '://', 1))"
_HOST_PORT = (
    "lower(reverse(split_part(reverse(split_part(split_part(split_part("
    "substr(o.url, strpos(o.url, '://') + 3), '/', 1), '?', 1), '#', 1)), '@', 1)))"
)
ORIGIN = (
    f"{_SCHEME} || '://' || CASE {_SCHEME}"
    f" WHEN 'http' THEN rtrim(replace({_HOST_PORT} || '|', ':80|', ''), '|')"
    f" WHEN 'https' THEN rtrim(replace({_HOST_PORT} || '|', ':443|', ''), '|')"
    f" ELSE {_HOST_PORT} END"
)
# The due rows that are the first pending row of their key, oldest first, but for those to the
# origins in $3 (at their cap): the planner tests the origin, the cheaper, before the head's
# probe, so a row skipped costs its step of the walk and its origin.
CLAIM = f"""
WITH due AS (
    SELECT id FROM webhook_outbox o
    WHERE state = 'pending' AND next_at <= now()
      AND NOT ({ORIGIN} = ANY ($3::text[]))
      AND seq = (SELECT e.seq FROM webhook_outbox e
                 WHERE e.state = 'pending' AND e.ordering >= o.ordering
                 ORDER BY e.ordering, e.seq LIMIT 1)
    ORDER BY next_at, seq
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_outbox o SET next_at = now() + make_interval(secs => $2)
FROM due WHERE o.id = due.id
RETURNING o.id, o.ordering, o.url, o.body, o.attempts,
          (SELECT secret FROM webhook_secrets s WHERE s.name = o.secret_ref) AS secret,
          o.secret_ref, {ORIGIN} AS origin
"""  # noqa: S608 - constants only
# These two take the head ($1, of key $3) out of pending and make the key's next row due, under
# the key's lock. The second update reads the snapshot the statement began with, where the head
# still looks pending: the next row is the first of the key after the head's seq (none when the
# head was not updated: a NULL seq).
DELIVERED = """
WITH done AS (
    UPDATE webhook_outbox
    SET state = 'delivered', delivered_at = now(), attempts = attempts + 1, last_error = NULL
    WHERE id = $1 AND state = 'pending' AND attempts = $2
    RETURNING seq
)
UPDATE webhook_outbox SET next_at = now()
WHERE id = (SELECT n.id FROM webhook_outbox n
            WHERE n.state = 'pending' AND (n.ordering, n.seq) > ($3, (SELECT seq FROM done))
            ORDER BY n.ordering, n.seq LIMIT 1)
  AND ordering = $3 AND NOT isfinite(next_at)
"""
# A failed attempt: due again after the backoff ($5 seconds), or dead once the give-up time
# ($6 seconds after the change, or after its last retry) has passed; then the next row is due.
FAILED = """
WITH failed AS (
    UPDATE webhook_outbox
    SET attempts = attempts + 1, last_error = left($4, 1000),
        state = CASE WHEN now() >= coalesce(retried_at, created_at) + make_interval(secs => $6)
                     THEN 'dead' ELSE 'pending' END,
        next_at = now() + make_interval(secs => $5)
    WHERE id = $1 AND state = 'pending' AND attempts = $2
    RETURNING seq, state
), promoted AS (
    UPDATE webhook_outbox SET next_at = now()
    WHERE id = (SELECT n.id FROM webhook_outbox n
                WHERE n.state = 'pending'
                  AND (n.ordering, n.seq) > ($3, (SELECT seq FROM failed WHERE state = 'dead'))
                ORDER BY n.ordering, n.seq LIMIT 1)
      AND ordering = $3 AND NOT isfinite(next_at)
)
SELECT state FROM failed
"""
DEAD_KEY = "SELECT ordering FROM webhook_outbox WHERE id = $1 AND state = 'dead'"
# Under the key's lock: the new seq is above every pending row's of the key.
RETRY = """
UPDATE webhook_outbox
SET state = 'pending', seq = DEFAULT, retried_at = now(),
    next_at = CASE WHEN (SELECT ordering FROM webhook_outbox
                         WHERE state = 'pending' AND ordering >= $2
                         ORDER BY ordering, seq LIMIT 1) = $2
                   THEN 'infinity' ELSE now() END
WHERE id = $1 AND state = 'dead'
"""
# A row killed while queued (a guard deleted) never had a real next_at: its last change then.
DEAD = """
SELECT seq, id, ordering, url, secret_ref, created_at, attempts, last_error,
       CASE WHEN next_at = 'infinity' THEN coalesce(retried_at, created_at) ELSE next_at END
       AS died_at
FROM webhook_outbox WHERE state = 'dead' AND seq > $1 ORDER BY seq LIMIT $2
"""
# In how many seconds the first head is due (negative: overdue; no row: none pending), so a retry
# waits for its backoff and not for the next poll. The first entries of the due index, but for
# the heads to the origins in $1 (at their cap: the landing of one of their attempts wakes the
# deliverer), which would otherwise be overdue and have it claim in a busy loop.
SOONEST = f"""
SELECT extract(epoch FROM next_at - now()) AS soonest FROM webhook_outbox o
WHERE state = 'pending' AND next_at < 'infinity'
  AND NOT ({ORIGIN} = ANY ($1::text[]))
  AND seq = (SELECT e.seq FROM webhook_outbox e
             WHERE e.state = 'pending' AND e.ordering >= o.ordering
             ORDER BY e.ordering, e.seq LIMIT 1)
ORDER BY next_at, seq
LIMIT 1
"""  # noqa: S608 - constants only
PENDING = "SELECT count(*) FROM webhook_outbox WHERE state = 'pending'"
# Keys whose first pending row is queued: the first pending row of each key, found by a skip
# scan of the ordering index (one probe per key with pending rows); those queued, by id.
STUCK = """
WITH RECURSIVE heads AS (
    (SELECT id, ordering, next_at FROM webhook_outbox WHERE state = 'pending'
     ORDER BY ordering, seq LIMIT 1)
    UNION ALL
    SELECT n.id, n.ordering, n.next_at FROM heads h
    CROSS JOIN LATERAL (SELECT id, ordering, next_at FROM webhook_outbox
                        WHERE state = 'pending' AND ordering > h.ordering
                        ORDER BY ordering, seq LIMIT 1) AS n
)
SELECT id FROM heads WHERE next_at = 'infinity'
"""
# Still the first of its key if still queued: rows are only ever added behind it.
UNSTICK = """
UPDATE webhook_outbox SET next_at = now()
WHERE id = ANY ($1::text[]) AND state = 'pending' AND NOT isfinite(next_at)
RETURNING id
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
    origin: str  # the URL's, as `ORIGIN` computes it: what the deliverer caps its flights by


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
    """Insert `row` inside the caller's transaction (a rollback sends nothing); after the commit,
    the caller calls `announce`. False: a row of that id was enqueued before."""
    await conn.execute(LOCK_KEY, row.ordering)
    status = await conn.execute(ENQUEUE, row.id, row.ordering, row.url, row.secret_ref, row.body)
    return bool(status.endswith(" 1"))


async def announce(db: Database) -> None:
    """After a commit that enqueued: wake the deliverers of every process now, rather than at
    their next poll. A statement of its own, outside any transaction that writes."""
    await db.fetchrow("wake the deliverers", NOTIFY)


async def retry(db: Database, id: str) -> None:  # noqa: A002 - the row's name for it
    """A dead letter back to pending, at the end of its key's queue, with a fresh give-up time;
    `NotFound` if no dead letter has that id."""
    async with db.transaction("retry a webhook") as conn:
        ordering = await conn.fetchval(DEAD_KEY, id)
        if ordering is not None:
            await conn.execute(LOCK_KEY, ordering)
        if ordering is None or (await conn.execute(RETRY, id, ordering)).endswith(" 0"):
            raise NotFound(f"no dead webhook delivery {id!r}")
    with contextlib.suppress(Unavailable):  # committed; the deliverers poll besides
        await announce(db)


async def dead_letters(db: Database, after: int = 0, limit: int = 100) -> list[DeadLetter]:
    """Dead letters after `seq` `after`, oldest first, at most `limit`."""
    rows = await db.fetch("list dead webhooks", DEAD, after, limit)
    return [DeadLetter(**dict(row)) for row in rows]


async def soonest(db: Database, skip: Collection[str] = ()) -> float | None:
    """Seconds until the first head of a key is due, but for those to the origins in `skip`
    (None: nothing pending)."""
    row = await db.fetchrow("look at pending webhooks", SOONEST, list(skip))
    return None if row is None else float(row["soonest"])


async def pending(db: Database) -> int:
    """Rows pending, heads and queued: a walk of them all, for a gauge now and then."""
    row = await db.fetchrow("count pending webhooks", PENDING)
    return 0 if row is None else int(row[0])


async def unstick(db: Database) -> list[str]:
    """Make due the first row of every key whose first pending row is queued; their ids."""
    stuck = [row["id"] for row in await db.fetch("look for stuck webhooks", STUCK)]
    if not stuck:
        return []
    return [row["id"] for row in await db.fetch("unstick webhooks", UNSTICK, stuck)]


async def claim(
    db: Database, limit: int, lease: float, skip: Collection[str] = ()
) -> list[Claimed]:
    """Up to `limit` due heads of their keys, hidden from other claims for `lease` seconds; none
    to the origins in `skip` (their heads stay due, untouched)."""
    rows = await db.fetch("claim webhooks", CLAIM, limit, lease, list(skip))
    return [
        Claimed(
            id=row["id"],
            ordering=row["ordering"],
            url=row["url"],
            body=bytes(row["body"]),
            attempts=row["attempts"],
            secret=None if row["secret"] is None else row["secret"].encode(),
            secret_ref=row["secret_ref"],
            origin=row["origin"],
        )
        for row in rows
    ]


async def delivered(db: Database, row: Claimed) -> None:
    """Record the attempt delivered, and make the key's next row due."""
    async with db.transaction("record a webhook delivered") as conn:
        await conn.execute(LOCK_KEY, row.ordering)
        await conn.execute(DELIVERED, row.id, row.attempts, row.ordering)


async def failed(db: Database, row: Claimed, error: str, delay: float, give_up: float) -> str:
    """Record a failed attempt (a dead head makes its key's next row due); the row's state after
    it ('pending', 'dead', or '' when another process had taken it over)."""
    async with db.transaction("record a webhook failure") as conn:
        await conn.execute(LOCK_KEY, row.ordering)
        found = await conn.fetchrow(
            FAILED, row.id, row.attempts, row.ordering, error, delay, give_up
        )
    return "" if found is None else str(found["state"])
