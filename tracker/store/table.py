"""A projection table derived from its domain row type: columns, codecs and statements.

A domain row is a NamedTuple; its fields, in order, are the table's columns, typed from their
annotations (`column_type`). What a table adds is declared with it (store/rows.py): `blank`
columns (optional values stored as '' instead of NULL), `derived` columns (computed from the row,
for indexes only: written, never read back), and how a counter table's upsert `merge`s a delta
into the stored row ('add', 'least', 'greatest'); without `merge`, an upsert replaces the row.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, NamedTuple, TypeGuard, TypeVar, get_args, get_origin

import orjson

from tracker.store.database import Record

R = TypeVar("R", bound=tuple[Any, ...])
Merge = Literal["add", "least", "greatest"]
SCALARS: dict[type, str] = {
    str: "text",
    int: "bigint",
    float: "double precision",
    bool: "boolean",
    datetime: "timestamptz",
}


class Column(NamedTuple):
    name: str
    type: str  # as PostgreSQL spells it in a cast: text, bigint, boolean, timestamptz, jsonb
    nullable: bool


@dataclass(frozen=True, slots=True)
class Derived:
    name: str
    compute: Callable[[Any], object]  # from the domain row; NOT NULL
    type: str = "text"


def column_type(annotation: object) -> tuple[str, bool]:
    """(PostgreSQL type, nullable) of a field's annotation."""
    args = get_args(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        kind, _ = column_type(inner[0] if len(inner) == 1 else typing.Union[tuple(inner)])  # noqa: UP007
        return kind, True
    if get_origin(annotation) is Literal and all(isinstance(a, str) for a in args):
        return "text", False
    if get_origin(annotation) in (typing.Union, types.UnionType) and all(
        column_type(a) == ("text", False) for a in args
    ):
        return "text", False  # values of several Literals (two platforms' states)
    if annotation in SCALARS:
        return SCALARS[annotation], False
    if _is_row(annotation) or get_origin(annotation) is frozenset or _rows_of(annotation):
        return "jsonb", False
    raise TypeError(f"no column type for {annotation!r}")


def _rows_of(annotation: object) -> type | None:
    """The row type of a `tuple[Row, ...]` annotation (several nested rows), else None."""
    args = get_args(annotation)
    if get_origin(annotation) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0] if _is_row(args[0]) else None
    return None


def _is_row(annotation: object) -> TypeGuard[type]:
    """A NamedTuple class (a nested domain row)."""
    return (
        isinstance(annotation, type)
        and issubclass(annotation, tuple)
        and hasattr(annotation, "_fields")
    )


@dataclass(frozen=True, eq=False)  # one of each, compared and hashed by identity
class Table(Generic[R]):
    name: str
    row: type[R]
    key: tuple[str, ...]
    blank: frozenset[str] = frozenset()
    derived: tuple[Derived, ...] = ()
    merge: Mapping[str, Merge] = field(default_factory=dict)
    append_only: bool = False  # transitions: a second row for one key is a bug, not an update
    columns: tuple[Column, ...] = field(init=False)
    to_row: Callable[[R], Sequence[Any]] = field(init=False)
    from_row: Callable[[Record], R] = field(init=False)

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(self.row)
        fields: tuple[str, ...] = self.row._fields  # type: ignore[attr-defined]
        columns = []
        for name in fields:
            kind, nullable = column_type(hints[name])
            columns.append(Column(name, kind, nullable and name not in self.blank))
        columns += [Column(d.name, d.type, nullable=False) for d in self.derived]
        object.__setattr__(self, "columns", tuple(columns))
        encoders = [_encoder(hints[name], name in self.blank) for name in fields]
        decoders = [_decoder(hints[name], name in self.blank) for name in fields]
        object.__setattr__(self, "to_row", _writer(encoders, self.derived))
        object.__setattr__(self, "from_row", _reader(self.row, fields, decoders))

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def write_sql(self, schema: str | None = None, first: int = 1) -> str:
        """INSERT all rows from parallel arrays in one statement; upsert unless append-only.

        The arrays are parameters `$first` onwards, so several tables can share a statement.
        """
        names = ", ".join(self.column_names)
        arrays = ", ".join(f"${i}::{c.type}[]" for i, c in enumerate(self.columns, first))
        target = f"{schema}.{self.name}" if schema else self.name
        # Identifiers come from the constant table descriptions below, never from input.
        insert = f"INSERT INTO {target} AS t ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608
        if self.append_only:
            return insert
        updates = ", ".join(
            f"{c.name} = {_merged(self.merge.get(c.name), c.name, c.type)}"
            for c in self.columns
            if c.name not in self.key
        )
        return f"{insert} ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET {updates}"

    def as_arrays(self, items: Sequence[R]) -> list[list[Any]]:
        rows = [self.to_row(item) for item in items]
        return (
            [list(column) for column in zip(*rows, strict=True)]
            if rows
            else [[] for _ in self.columns]
        )


def _merged(how: Merge | None, column: str, kind: str) -> str:
    if how is None:
        return f"EXCLUDED.{column}"
    if how == "add":
        return f"t.{column} + EXCLUDED.{column}"
    # Text compares as C, by code point, as Python's min() and max() do in the domain.
    collated = ' COLLATE "C"' if kind == "text" else ""
    return f"{how}(t.{column}{collated}, EXCLUDED.{column})"


Codec = Callable[[Any], Any] | None  # None: the value goes as it is (the common, fast case)


def _encoder(annotation: object, blank: bool) -> Codec:
    kind, _ = column_type(annotation)
    if blank:
        return _blank_for_none
    if kind != "jsonb":
        return None
    if _rows_of(annotation):
        return _json_of_rows
    return _json_of_row if _is_row(_optional(annotation)) else _json_of_set


def _decoder(annotation: object, blank: bool) -> Codec:
    kind, _ = column_type(annotation)
    if blank:
        return _none_for_blank
    if kind != "jsonb":
        return None
    if rows := _rows_of(annotation):
        return _rows_from_json(rows)
    inner = _optional(annotation)
    if _is_row(inner):
        return _row_from_json(inner)
    return _set_from_json


def _optional(annotation: object) -> object:
    args = [a for a in get_args(annotation) if a is not type(None)]
    return args[0] if type(None) in get_args(annotation) and len(args) == 1 else annotation


def _blank_for_none(value: str | None) -> str:
    return "" if value is None else value


def _none_for_blank(value: str) -> str | None:
    return value or None


def _json_of_row(value: tuple[Any, ...] | None) -> str | None:
    if value is None:
        return None
    # orjson writes datetimes as RFC 3339, which fromisoformat reads back exactly.
    return orjson.dumps(value._asdict()).decode()  # type: ignore[attr-defined]


def _json_of_rows(value: tuple[Any, ...]) -> str:
    return orjson.dumps([row._asdict() for row in value]).decode()


def _row_from_document(row: type) -> Callable[[dict[str, Any]], Any]:
    times = {k for k, v in typing.get_type_hints(row).items() if v is datetime}

    def decode(document: dict[str, Any]) -> Any:  # noqa: ANN401 - the nested row's own type
        for name in times:
            document[name] = datetime.fromisoformat(document[name])
        return row(**document)

    return decode


def _row_from_json(row: type) -> Callable[[str | None], Any]:
    from_document = _row_from_document(row)

    def decode(text: str | None) -> Any:  # noqa: ANN401 - the nested row's own type
        return None if text is None else from_document(orjson.loads(text))

    return decode


def _rows_from_json(row: type) -> Callable[[str], tuple[Any, ...]]:
    from_document = _row_from_document(row)

    def decode(text: str) -> tuple[Any, ...]:
        return tuple(from_document(document) for document in orjson.loads(text))

    return decode


def _json_of_set(value: frozenset[str]) -> str:
    return orjson.dumps(sorted(value)).decode()


def _set_from_json(text: str) -> frozenset[str]:
    return frozenset(orjson.loads(text))


def _writer(encoders: list[Codec], derived: tuple[Derived, ...]) -> Callable[[Any], Sequence[Any]]:
    if not derived and all(e is None for e in encoders):
        return _itself  # domain rows are named tuples in column order: they go as they are
    converted = [(i, e) for i, e in enumerate(encoders) if e is not None]
    computed = [d.compute for d in derived]

    def write(item: tuple[Any, ...]) -> Sequence[Any]:
        values = list(item)
        for i, encode in converted:
            values[i] = encode(values[i])
        values += [compute(item) for compute in computed]
        return values

    return write


def _itself(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return row


def _reader(row: type[R], fields: tuple[str, ...], decoders: list[Codec]) -> Callable[[Record], R]:
    pairs = list(zip(fields, decoders, strict=True))

    def read(record: Record) -> R:
        return row(*(record[n] if d is None else d(record[n]) for n, d in pairs))

    return read
