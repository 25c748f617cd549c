"""Event bodies at rest: the exact bytes, compressed with zstd and a dictionary of the platforms'
own notification shapes (sql/006_event_bodies.sql says why and holds dictionary 1).

`events.codec` says how `events.raw` holds a body: 0, as received; n > 0, a zstd frame made with
dictionary n of `body_codecs`; -1 (`PRUNED`), no longer held: an unrecognised body archived
and removed by `tracker prune-unrecognised`, its size and SHA-256 kept in `pruned_bodies`.
Dictionaries never change once written (a trigger refuses it), so
each process loads them once, on first use, and keeps them. Every reader of `raw` goes through
`unpack`, every writer through `pack`; nothing else needs to know.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import zstandard

from tracker.store.database import Connection, Database

LEVEL = 3  # zstd's default: ~1 µs a body here; higher levels gained 3% at 3x the time
STORED_AS_RECEIVED = 0
PRUNED = -1  # the body was archived and removed (sql/018_unrecognised_limits.sql)
READ = "SELECT id, dictionary FROM body_codecs ORDER BY id"


class Undecodable(Exception):  # noqa: N818 - a fact about stored data, found when reading it
    """A stored body that its codec cannot turn back into bytes: altered, or a codec unknown."""


@dataclass
class _Codecs:
    """The dictionaries of one database, by id; the newest one compresses."""

    readers: dict[int, zstandard.ZstdDecompressor] = field(default_factory=dict)
    writer: tuple[int, zstandard.ZstdCompressor] | None = None

    def load(self, rows: list[tuple[int, bytes]]) -> None:
        for codec, data in rows:
            dictionary = zstandard.ZstdCompressionDict(
                bytes(data), dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            self.readers[codec] = zstandard.ZstdDecompressor(dict_data=dictionary)
            compressor = zstandard.ZstdCompressor(
                level=LEVEL,
                dict_data=dictionary,
                write_checksum=False,  # the hash chain covers the body already
                write_content_size=True,
                write_dict_id=False,  # `events.codec` says which dictionary
            )
            if self.writer is None or codec > self.writer[0]:
                self.writer = (codec, compressor)


_codecs = _Codecs()


async def ready(source: Connection | Database, seen: Iterable[int] = ()) -> None:
    """Load the dictionaries if this process has not yet, or does not know a codec `seen` in rows
    it read (a newer process may have added one since). Cheap once done."""
    if _codecs.writer is None or any(not knows(c) for c in seen):
        rows = (
            await source.fetch("read body codecs", READ)
            if isinstance(source, Database)
            else await source.fetch(READ)
        )
        _codecs.load([(row["id"], row["dictionary"]) for row in rows])


def knows(codec: int) -> bool:
    """Whether `unpack` can read this codec without `ready` first."""
    return codec in (STORED_AS_RECEIVED, PRUNED) or codec in _codecs.readers


def pack(body: bytes) -> tuple[int, bytes]:
    """(codec, stored form) of a body; as received when compression would not shrink it."""
    if _codecs.writer is None:
        return STORED_AS_RECEIVED, body
    codec, compressor = _codecs.writer
    packed = compressor.compress(body)
    return (codec, packed) if len(packed) < len(body) else (STORED_AS_RECEIVED, body)


def size(codec: int, stored_size: int, head: bytes) -> int:
    """A body's size as received, from its stored size and its first bytes (a zstd frame says
    its content size in its header; see `pack`), without decompressing it."""
    if codec in (STORED_AS_RECEIVED, PRUNED):
        return stored_size  # a pruned body is stored as nothing
    try:
        content = zstandard.frame_content_size(head)
    except zstandard.ZstdError:
        content = -1
    return content if content >= 0 else stored_size * 64  # unknown: assume it compressed well


def unpack(codec: int, stored: bytes) -> bytes:
    """The body exactly as received (nothing, if it was pruned: see `PRUNED`). Raises
    `Undecodable` if `stored` is not what `codec` wrote."""
    if codec == STORED_AS_RECEIVED:
        return bytes(stored)
    if codec == PRUNED:
        if stored:
            raise Undecodable("a pruned body holds bytes: it was altered")
        return b""
    reader = _codecs.readers.get(codec)
    if reader is None:
        raise Undecodable(f"body codec {codec} is not in body_codecs (call bodies.ready first)")
    try:
        return reader.decompress(stored)
    except zstandard.ZstdError as error:
        raise Undecodable(
            f"the stored body is not a zstd frame of codec {codec}: {error}"
        ) from None
