"""Archives of pruned bodies, read back (`tracker verify --archive FILE`): with them, the links
of pruned events are recomputed from their bodies instead of taken as stored.

An archive holds the lines of `tracker export` (`events.export_line`). Only where each
position's line starts is kept in memory (bodies may be gigabytes); a body is read when its
event is checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import orjson


class Unreadable(Exception):  # noqa: N818 - a file that is not an archive
    pass


class Archive:
    def __init__(self, paths: Iterable[Path]) -> None:
        self._files: list[BinaryIO] = [path.open("rb") for path in paths]
        self._where: dict[int, tuple[int, int]] = {}  # position: (file, offset)
        try:
            for number, file in enumerate(self._files):
                self._index(number, file)
        except Exception:
            self.close()
            raise

    def _index(self, number: int, file: BinaryIO) -> None:
        offset = 0
        for count, line in enumerate(iter(file.readline, b""), 1):
            position: int = _line(line, count, file)["position"]
            self._where[position] = (number, offset)
            offset += len(line)

    def __len__(self) -> int:
        return len(self._where)

    def body(self, position: int) -> bytes | None:
        """The body archived for `position`, exactly as received; None if no archive has it."""
        where = self._where.get(position)
        if where is None:
            return None
        file = self._files[where[0]]
        file.seek(where[1])
        body: str = _line(file.readline(), 0, file)["body"]
        return body.encode("utf-8")

    def close(self) -> None:
        for file in self._files:
            file.close()


def _line(line: bytes, number: int, file: BinaryIO) -> dict[str, Any]:
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise Unreadable(f"{file.name} line {number}: not JSON: {error}") from None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("position"), int)
        or not isinstance(document.get("body"), str)
    ):
        raise Unreadable(
            f"{file.name} line {number}: not an archived event "
            "(a line of `tracker export` with its body)"
        )
    return document
