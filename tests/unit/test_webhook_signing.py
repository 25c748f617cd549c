"""What a webhook receiver checks (tracker/webhooks/signing.py): the signature is DESIGN.md's
exact form over the exact body bytes, a receiver's checks accept it and refuse any change."""

from __future__ import annotations

import hashlib
import hmac

from tracker.webhooks.signing import SIGNATURE, TIMESTAMP, fresh, headers, signature, verify

SECRET = b"guard-secret"
BODY = b'{"id":"a1","guard":"g","state":"firing","at":"2026-12-07T09:00:00Z"}'


def test_the_signature_is_sha256_hex_of_the_exact_body() -> None:
    expected = hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY) == f"sha256={expected}"
    # A known vector (RFC 4231, test case 2), so the form cannot drift with the code.
    assert signature(b"Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_the_headers_sent() -> None:
    sent = headers(SECRET, BODY, 1_765_000_000.7)
    assert sent == {
        "Content-Type": "application/json",
        SIGNATURE: signature(SECRET, BODY),
        TIMESTAMP: "1765000000",
    }
    assert (SIGNATURE, TIMESTAMP) == ("X-Tracker-Signature", "X-Tracker-Timestamp")


def test_a_receiver_accepts_it_and_refuses_any_change() -> None:
    header = signature(SECRET, BODY)
    assert verify(SECRET, BODY, header)
    assert not verify(b"other-secret", BODY, header)
    assert not verify(SECRET, BODY.replace(b"09:00", b"09:01"), header)  # `at` is signed
    assert not verify(SECRET, BODY + b" ", header)  # the exact bytes, whitespace too
    assert not verify(SECRET, BODY, header.upper())
    assert not verify(SECRET, BODY, "")


def test_a_receiver_refuses_timestamps_beyond_five_minutes() -> None:
    now = 1_765_000_000.0
    assert fresh("1765000000", now)
    assert fresh(str(int(now) - 300), now)
    assert fresh(str(int(now) + 300), now)
    assert not fresh(str(int(now) - 301), now)
    assert not fresh(str(int(now) + 301), now)
    assert not fresh("yesterday", now)
    assert not fresh("", now)
