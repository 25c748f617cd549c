"""What a webhook carries to prove it is ours: pure, so a receiver's check can be tested alone.

Headers of every delivery:

- `X-Tracker-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under the secret>`
  (DESIGN.md, "Guards and alerts"). Only the body is signed, never a timestamp beside it: the
  contract fixes this form, and a receiver needs nothing but the raw body and the secret.
- `X-Tracker-Timestamp: <unix seconds>`: when this attempt was sent (retries send a new one).

How a receiver verifies, in this order:

1. Compute `signature(secret, raw_body)` over the body exactly as received (before any JSON
   parsing) and compare it with the header in constant time (`hmac.compare_digest`); refuse on
   a mismatch.
2. Refuse when `X-Tracker-Timestamp` is more than 5 minutes from its own clock (`fresh`).
3. Deduplicate by the body's `id`: delivery is at least once, so the same change may come again.

What the signature covers: the whole body, its `id` (unique per alert change) and `at` (when
the alert changed) included; what it does not: the timestamp header. The header stops a naive
replay of a captured request after 5 minutes; someone who can capture and rewrite headers can
give a replay a fresh timestamp, and then the signed `id` (step 3) and `at` are what make the
replay harmless: it can only repeat a change the receiver has already seen.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE = "X-Tracker-Signature"
TIMESTAMP = "X-Tracker-Timestamp"
PREFIX = "sha256="
TOLERANCE = 300.0  # seconds: how far from its clock a receiver accepts a timestamp


def signature(secret: bytes, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of `body` under `secret`."""
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def headers(secret: bytes, body: bytes, now: float) -> dict[str, str]:
    """Every header a delivery of `body` sends at unix time `now`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE: signature(secret, body),
        TIMESTAMP: str(int(now)),
    }


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """A receiver's step 1: does `header` sign `body` under `secret`? (constant time)"""
    return hmac.compare_digest(signature(secret, body).encode(), header.encode())


def fresh(timestamp: str, now: float, tolerance: float = TOLERANCE) -> bool:
    """A receiver's step 2: is `timestamp` (the header's text) within `tolerance` of `now`?"""
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now - sent) <= tolerance
