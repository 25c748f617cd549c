"""The session cookie's value: `<session id>.<expiry>.<HMAC>`, signed with the server's secret.

The MAC is checked before anything else, in constant time and without the database, so a
forged or mangled cookie costs one HMAC. It is keyed by a random secret kept in the database,
never by the read token: a stolen cookie says nothing about the token, and cannot be used to
test guesses of it offline. What a valid MAC proves (the server issued this id with this expiry)
is then checked against the session's row, which sign-out and `tracker sessions revoke` end.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_PURPOSE = b"tracker dashboard session "
_SHAPE = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})\.([0-9a-f]{64})")
# scrypt at n=2**14, r=8 (16 MiB, about 60 ms here): done once per process, and the cost of
# each guess for anyone who reads the database and wants the read token from a digest.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


@dataclass(frozen=True, slots=True)
class Signed:
    session_id: str
    expires: int  # Unix seconds


def sign(secret: bytes, session_id: str, expires: int) -> str:
    return f"{session_id}.{expires}.{_mac(secret, session_id, expires)}"


def verified(value: str | None, secret: bytes, now: float) -> Signed | None:
    """The session a cookie names, if the cookie was signed with `secret` and has not expired."""
    match = _SHAPE.fullmatch(value or "")
    if match is None:
        return None
    session_id, expires, mac = match[1], int(match[2]), match[3]
    if not hmac.compare_digest(mac, _mac(secret, session_id, expires)) or expires <= now:
        return None
    return Signed(session_id, expires)


def token_digest(read_token: str, salt: bytes) -> bytes:
    """What a session row keeps of the read token it was opened under (see _SCRYPT)."""
    return hashlib.scrypt(read_token.encode("utf-8", "surrogateescape"), salt=salt, **_SCRYPT)


def _mac(secret: bytes, session_id: str, expires: int) -> str:
    message = _PURPOSE + f"{session_id}.{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
