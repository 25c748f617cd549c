"""Dashboard sessions, held in the database so that every worker and host agrees at once: a
sign-out, a `tracker sessions revoke` or a new secret ends a session for all of them.

The secret that signs cookies lives in `session_keys` (sql/017_sessions.sql), drawn at random,
never derived from the read token. A session row keeps a slow digest of the read token it was
opened under, so a server holding another read token does not count it as live.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from tracker.store.database import Database
from tracker.store.errors import NotFound

ENDED_KEPT_DAYS = 7  # ended sessions stay listed this long, then go at the next sign-in

KEYS = "SELECT secret, token_salt FROM session_keys"
SIGNING_KEY = "SELECT secret FROM session_keys"
# The secret comes back with the row: the cookie is signed with the current one, even if this
# process has not yet seen a rotation.
OPEN = """
INSERT INTO sessions (id, token_digest, expires_at) VALUES ($1, $2, to_timestamp($3))
RETURNING (SELECT secret FROM session_keys)
"""
PRUNE = """
DELETE FROM sessions WHERE coalesce(revoked_at, expires_at) < now() - make_interval(days => $1)
"""
LIVE = """
SELECT true FROM sessions
WHERE id = $1 AND token_digest = $2 AND revoked_at IS NULL AND expires_at > now()
"""
REVOKE = """
UPDATE sessions SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
RETURNING revoked_at = now() AS now_revoked
"""
REVOKE_ALL = (
    "UPDATE sessions SET revoked_at = now() WHERE revoked_at IS NULL AND expires_at > now()"
)
ROTATE = "UPDATE session_keys SET secret = $1, rotated_at = now()"
LISTING = """
SELECT id, issued_at, expires_at, revoked_at,
       CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
            WHEN expires_at <= now() THEN 'expired'
            ELSE 'live' END AS state
FROM sessions ORDER BY issued_at DESC, id
"""


@dataclass(frozen=True, slots=True)
class Keys:
    secret: bytes  # signs cookies
    token_salt: bytes  # salts the read token's digest


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    state: str  # live, expired or revoked


async def keys(db: Database) -> Keys:
    row = await db.fetchrow("read the session keys", KEYS)
    if row is None:  # the migration draws them; someone deleted the row
        raise LookupError("session_keys is empty: run `tracker sessions revoke --all`")
    return Keys(bytes(row["secret"]), bytes(row["token_salt"]))


async def current_secret(db: Database) -> bytes | None:
    row = await db.fetchrow("read the session secret", SIGNING_KEY)
    return None if row is None else bytes(row["secret"])


async def open_session(db: Database, token_digest: bytes, expires: int) -> tuple[str, bytes]:
    """A new session until `expires` (Unix seconds): its id, and the secret to sign it with."""
    session_id = secrets.token_hex(16)
    async with db.transaction("open a session") as conn:
        await conn.execute(PRUNE, ENDED_KEPT_DAYS)
        secret: bytes = await conn.fetchval(OPEN, session_id, token_digest, expires)
    return session_id, bytes(secret)


async def is_live(db: Database, session_id: str, token_digest: bytes) -> bool:
    return await db.fetchrow("check a session", LIVE, session_id, token_digest) is not None


async def revoke(db: Database, session_id: str) -> bool:
    """End one session: True if it was live until now, False if it had ended; `NotFound` if
    there is no such session."""
    row = await db.fetchrow("revoke a session", REVOKE, session_id)
    if row is None:
        raise NotFound(f"no session {session_id}")
    return bool(row["now_revoked"])


async def revoke_all(db: Database) -> int:
    """End every session and draw a new secret, in one transaction: cookies signed with the old
    secret fail their MAC everywhere once each server has read the new one, and their rows are
    revoked meanwhile. Returns how many live sessions ended."""
    async with db.transaction("revoke every session") as conn:
        ended = await conn.execute(REVOKE_ALL)
        await conn.execute(ROTATE, secrets.token_bytes(48))
    return int(ended.rsplit(" ", 1)[1])


async def listing(db: Database) -> list[Session]:
    rows = await db.fetch("list sessions", LISTING)
    return [Session(**dict(row)) for row in rows]
