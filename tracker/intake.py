"""One delivery into the log, whichever channel brought it: an HTTP POST or an AMQP message.

Both channels take the same steps, so they accept and refuse the same bodies for the same
reasons: `examine` the bytes (decode and validate), `admit` them (the limits of unrecognised
bodies), `append` them (group commit), and `keep` whatever is refused in `rejected` before the
sender hears of it. What differs is only how each channel answers: a status code, or a
settlement of the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tracker.config import Settings
from tracker.domain.delivery import NewEvent, Refusal, decode
from tracker.store import budget, rejected
from tracker.store.database import Database
from tracker.store.errors import Unstorable
from tracker.store.group_commit import GroupCommit

FLOOD_PREFIX = 256  # bytes kept of a body refused for the budget (its size and SHA-256 too)


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal to keep: what to store, how much of the body, and when to try again."""

    rejection: rejected.Rejection
    prefix: int | None = None  # bytes of the body kept; None: TRACKER_REJECTED_PREFIX_BYTES
    retry_after: int | None = None  # seconds, when a later attempt may succeed


@dataclass(frozen=True, slots=True)
class Sender:
    """Whose daily budget of unrecognised bodies a delivery draws on, and how to name it."""

    token: str | None  # the budget's key (stored as a digest: store/budget.py)
    name: str  # "this ingest token", "the AMQP source DefaultQueue"


def examine(raw: bytes) -> NewEvent | Refused:
    """The event `raw` becomes, or why it cannot be kept (400 malformed, 422 schema)."""
    try:
        return decode(raw)
    except Refusal as refusal:
        status = 400 if refusal.kind == "malformed" else 422
        kept = rejected.Rejection(status, refusal.code, refusal.message, refusal.details, raw)
        return Refused(kept)


async def admit(
    database: Database, settings: Settings, event: NewEvent, sender: Sender
) -> Refused | None:
    """None if `event` may be appended; else the refusal (the limits of unrecognised bodies).

    Any JSON object is accepted and logged whole as an unrecognised notification, so without
    limits whoever can deliver (the token sits in the platform's callback URL) could fill the
    log for ever: a size cap (TRACKER_UNRECOGNISED_MAX_BYTES; real notifications are under
    2 KiB), and a byte budget per sender per UTC day (TRACKER_UNRECOGNISED_DAILY_BYTES,
    kept in the database: store/budget.py). A recognised notification never pays the budget's
    round trip.
    """
    if event.stream_type != "unrecognised":
        return None
    size, cap = len(event.raw), settings.unrecognised_max_bytes
    if size > cap:
        message = (
            f"the body is {size} bytes and of no type this tracker projects; such bodies are "
            f"kept up to {cap} bytes (TRACKER_UNRECOGNISED_MAX_BYTES)"
        )
        refusal = rejected.Rejection(413, "unrecognised_too_large", message, [], event.raw)
        return Refused(refusal, min(settings.rejected_prefix_bytes, cap))
    limit = settings.unrecognised_daily_bytes
    spent = await budget.consume(database, sender.token, size, limit)
    if spent.granted:
        return None
    message = (
        f"today's budget of unrecognised bodies for {sender.name} ({limit} bytes a UTC day, "
        "TRACKER_UNRECOGNISED_DAILY_BYTES) is spent; recognised notifications are still "
        f"accepted; retry after {spent.until_midnight} s (next UTC midnight)"
    )
    refusal = rejected.Rejection(429, "unrecognised_budget_exhausted", message, [], event.raw)
    return Refused(refusal, FLOOD_PREFIX, spent.until_midnight)


async def append(appends: GroupCommit, event: NewEvent) -> int | Refused:
    """The log position of `event` once committed, or the database's refusal of it.

    Raises `Unavailable` when nothing could be stored: the sender must deliver it again.
    """
    try:
        return await appends.append(event)
    except Unstorable as refused:
        # Valid to our models, refused by the database (a value past a column's limits): a
        # retry would fail the same way, so it is a refusal, kept like any other.
        message = f"the database cannot store this delivery: {refused}"
        return Refused(rejected.Rejection(422, "unstorable", message, [], event.raw))


async def keep(
    database: Database, settings: Settings, refused: Refused, received_at: datetime
) -> int:
    """Store a refusal in `rejected` (its id); raises `Unavailable` if it cannot be stored."""
    prefix = settings.rejected_prefix_bytes if refused.prefix is None else refused.prefix
    return await rejected.keep(database, refused.rejection, received_at, prefix)
