"""Everything `tracker serve` checks of the database before it answers anyone: commits are
durable (durability.py), nobody but the owner may create where the owner's functions look
(trust.py), and the planner has statistics (a warning only)."""

from __future__ import annotations

from tracker.config import Settings
from tracker.store.database import Database
from tracker.store.durability import checked
from tracker.store.trust import refuse_untrusted_schema, warn_about_statistics


async def preflight(db: Database, settings: Settings) -> None:
    """Raise `UnsafeDurability` or `UntrustedSchema` to refuse; log what is merely unwise."""
    await checked(db, allow_unsafe=settings.allow_unsafe_durability)
    await refuse_untrusted_schema(db)
    await warn_about_statistics(db)
