"""The limits of unrecognised bodies: any JSON object is accepted and logged whole as an
unrecognised notification, so without them anyone holding the ingest token (it sits in the
platform's callback URL) could fill the log for ever.

Two limits, checked after `decode` and before the append, and only for unrecognised bodies (a
recognised notification never pays the budget's round trip):

- a size cap (TRACKER_UNRECOGNISED_MAX_BYTES): real notifications are under 2 KiB; over it, 413;
- a byte budget per ingest token per UTC day (TRACKER_UNRECOGNISED_DAILY_BYTES), kept in the
  database (store/budget.py); spent, 429 with Retry-After = seconds to the next UTC midnight.

Both refusals are kept in `rejected` like every other; the budget's with a short prefix only,
so the refusals of a flood cost little.
"""

from __future__ import annotations

from datetime import datetime
from typing import NoReturn

from aiohttp import web

from tracker.domain.delivery import NewEvent
from tracker.http.errors import ApiError
from tracker.http.keys import DATABASE, SETTINGS
from tracker.store import budget, rejected

FLOOD_PREFIX = 256  # bytes kept of a body refused for the budget (its size and SHA-256 too)


async def admit(request: web.Request, event: NewEvent, received_at: datetime) -> None:
    """Return if `event` may be appended; else keep the refusal and raise its `ApiError`."""
    if event.stream_type != "unrecognised":
        return
    settings = request.app[SETTINGS]
    size, cap = len(event.raw), settings.unrecognised_max_bytes
    if size > cap:
        message = (
            f"the body is {size} bytes and of no type this tracker projects; such bodies are "
            f"kept up to {cap} bytes (TRACKER_UNRECOGNISED_MAX_BYTES)"
        )
        refusal = rejected.Rejection(413, "unrecognised_too_large", message, [], event.raw)
        await _refuse(request, refusal, received_at, min(settings.rejected_prefix_bytes, cap))
    limit = settings.unrecognised_daily_bytes
    # The configured token, not the presented one: the auth middleware has let only it through,
    # and with no token set a sender must not open a fresh budget by naming a new one.
    spent = await budget.consume(request.app[DATABASE], settings.ingest_token, size, limit)
    if not spent.granted:
        message = (
            f"today's budget of unrecognised bodies for this ingest token ({limit} bytes a UTC "
            "day, TRACKER_UNRECOGNISED_DAILY_BYTES) is spent; recognised notifications are "
            f"still accepted; retry after {spent.until_midnight} s (next UTC midnight)"
        )
        refusal = rejected.Rejection(429, "unrecognised_budget_exhausted", message, [], event.raw)
        retry = {"Retry-After": str(spent.until_midnight)}
        await _refuse(request, refusal, received_at, FLOOD_PREFIX, retry)


async def _refuse(
    request: web.Request,
    refusal: rejected.Rejection,
    received_at: datetime,
    prefix: int,
    headers: dict[str, str] | None = None,
) -> NoReturn:
    await rejected.keep(request.app[DATABASE], refusal, received_at, prefix)
    raise ApiError(refusal.status, refusal.code, refusal.reason, refusal.details, headers=headers)
