"""The links of each stream's hash chain, computed here exactly as the database computes them
when appending (`tracker_link`, sql/definitions/11_tracker_link.sql), so `tracker verify` checks the
log with code that does not run inside the database it checks.

Two versions of link are in a log (`events.chain`):

- 1, body only (migrations 004 to 010): sha256(previous ‖ body). Events appended before
  migration 011 keep these; a link of version 1 after `chain_versions`' boundary is a break.
- 2, all fields: sha256(previous ‖ 0x02 ‖ position ‖ stream type ‖ stream id ‖ event type ‖
  received_at ‖ occurred_at ‖ readmitted_from ‖ body). Integers are 8 bytes big-endian, times
  microseconds since 1970 as such, texts and the body their UTF-8 (or raw) bytes after a 4-byte
  length, and a field that may be null a byte 0 (null) or 1 (then the value). Every field has
  a fixed size or a length before it, so no two different events give the same bytes. What is
  derived is left out: the stored (compressed) form and its codec, the hash itself.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime
from typing import Protocol

GENESIS = bytes(32)  # what the first event of every stream chains to
SEAL = b"tracker pruned body\x00"  # begins a pruned event's seal (`seal`)
BODY_ONLY, ALL_FIELDS = 1, 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NULL, _PRESENT = b"\x00", b"\x01"
# Verify computes a million of these per run: the layout packed with compiled structs.
_HEAD = struct.Struct(">Bqi")  # version, position, length of the stream type
_SIZE, _INT = struct.Struct(">i"), struct.Struct(">q")


def body_only(previous: bytes | None, body: bytes) -> bytes:
    """A link of version 1: the stream's previous hash (zeros at first) and the body."""
    return hashlib.sha256((previous or GENESIS) + body).digest()


class Fields(Protocol):
    """What a link of version 2 covers (`tracker.store.events.LoggedEvent` has it all)."""

    @property
    def position(self) -> int: ...
    @property
    def stream_type(self) -> str: ...
    @property
    def stream_id(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def received_at(self) -> datetime: ...
    @property
    def occurred_at(self) -> datetime | None: ...
    @property
    def readmitted_from(self) -> int | None: ...
    @property
    def raw(self) -> bytes: ...


def all_fields(previous: bytes | None, event: Fields) -> bytes:
    """A link of version 2: the stream's previous hash and every stored field of the event."""
    return hashlib.sha256(_layout(previous, event, event.raw)).digest()


def seal(previous: bytes | None, event: Fields, body_sha256: bytes, link: bytes) -> bytes:
    """What stands in for a pruned event's link, which cannot be recomputed without its body
    (`tracker prune-unrecognised` records it in `pruned_bodies`): the link as stored, over the
    layout of version 2 with the body's SHA-256 for the body. A pruned event whose hash, fields
    or predecessor changed no longer matches its seal, as an event no longer matches its link;
    a forger must rewrite seals as well as links (what the chains alone never stop)."""
    return hashlib.sha256(SEAL + link + _layout(previous, event, body_sha256)).digest()


def _layout(previous: bytes | None, event: Fields, body: bytes) -> bytes:
    kind, stream = event.stream_type.encode(), event.stream_id.encode()
    name = event.event_type.encode()
    occurred, readmitted = event.occurred_at, event.readmitted_from
    return b"".join(
        (
            previous or GENESIS,
            _HEAD.pack(ALL_FIELDS, event.position, len(kind)),
            kind,
            _SIZE.pack(len(stream)),
            stream,
            _SIZE.pack(len(name)),
            name,
            _INT.pack(_micros(event.received_at)),
            _NULL if occurred is None else _PRESENT + _INT.pack(_micros(occurred)),
            _NULL if readmitted is None else _PRESENT + _INT.pack(readmitted),
            _SIZE.pack(len(body)),
            body,
        )
    )


def _micros(at: datetime) -> int:
    """Microseconds since 1970, exactly (PostgreSQL keeps times to the microsecond). asyncpg
    stores Python's first and last instants as -infinity and infinity, and reads those back as
    naive `datetime.min` and `datetime.max`: they are UTC here, as in `tracker_micros`."""
    since = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)) - EPOCH
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds
