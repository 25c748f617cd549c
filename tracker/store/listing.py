"""Keyset pages that cost in proportion to the page, never to the fleet.

Every list the API offers reads one btree range per page, or a handful of ranges merged: each
index is (equality columns..., enumerated columns..., page order). For a filter set, `Listing`
picks the index that covers it best and writes one statement for that set (cached), never a
catch-all `$n IS NULL OR col = $n`, which the planner can only answer with a scan. A column of
a few values that the filter leaves open (a device's state, its last result, a track) is walked
one value at a time: each value is its own range, already in page order, and PostgreSQL merges
the branches (Merge Append), reading about `limit` rows in all. Optional values are stored as
'' for this reason (store/rows.py: to the planner `IS NULL` is no equality, and a NULL range
would be read whole and sorted).

A filter no index covers (an application and an operation at once, say) is checked on the rows
the chosen range yields: exact, and cheap when, as there, the two agree for nearly every row.
tests/integration/test_listing_plans.py runs EXPLAIN ANALYZE on realistic tables and fails if
any page reads more rows than its size allows.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]\w*)")  # :name, not ::cast


@dataclass(frozen=True, slots=True)
class Index:
    name: str  # the index this walks (what EXPLAIN shows)
    prefix: tuple[str, ...]  # given by every query that uses it
    middle: tuple[str, ...] = ()  # given, or walked one stored value at a time
    where: str = ""  # a partial index's predicate, repeated so the planner may use it


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    params: tuple[str, ...]  # what $1, $2... stand for: filter names, "after0".., "limit"
    index: Index
    branches: int

    def args(self, filters: Mapping[str, object], after: Sequence[object], limit: int) -> list[Any]:
        values: dict[str, object] = {**filters, "limit": limit}
        values.update({f"after{i}": v for i, v in enumerate(after)})
        return [values[name] for name in self.params]


@dataclass(frozen=True, eq=False)  # one of each, compared and hashed by identity
class Listing:
    table: str
    key: tuple[str, ...]  # the table's key: a page is its keys, joined back for the rows
    order: tuple[str, ...]  # the page order, a total one: the cursor holds these values
    indexes: tuple[Index, ...]
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # middle columns' values
    ids: frozenset[str] = frozenset()  # order columns that are text: compared as "C" (see SQL)
    descending: bool = False
    conditions: tuple[str, ...] = ()  # extra conditions with :named parameters (e.g. a range)

    def query(self, given: frozenset[str], *, resumed: bool) -> Query:
        """The page's keys (and order columns) for this set of filters; `resumed`: after a
        cursor. Each branch reads only columns its index holds: an index-only scan, which the
        planner prefers to walking the table's key with the filters checked row by row."""
        return _query(self, given, resumed)

    def ordered(self, column: str, table: str = "") -> str:
        """A page-order column as compared: ids as "C", like the indexes that hold them."""
        name = f"{table}.{column}" if table else column
        return f'{name} COLLATE "C"' if column in self.ids else name

    def rows(self, query: Query) -> str:
        """The page's whole rows, in page order: `query` joined back to the table by key."""
        direction = " DESC" if self.descending else ""
        order = ", ".join(f"{self.ordered(c, 'page')}{direction}" for c in self.order)
        using = ", ".join(self.key)
        return (
            f"WITH page AS ({query.sql}) SELECT t.* FROM page "  # noqa: S608 - constants
            f"JOIN {self.table} t USING ({using}) ORDER BY {order}"
        )

    def choose(self, given: frozenset[str]) -> Index:
        usable = [i for i in self.indexes if set(i.prefix) <= given]
        if not usable:
            raise ValueError(f"no index of {self.table} serves filters {sorted(given)}")

        def fit(index: Index) -> tuple[int, int]:
            covered = len(given & {*index.prefix, *index.middle})
            return covered, -self._branches(index, given)

        return max(usable, key=fit)

    def _branches(self, index: Index, given: frozenset[str]) -> int:
        count = 1
        for column in index.middle:
            if column not in given:
                count *= len(self.values[column])
        return count


@cache
def _query(listing: Listing, given: frozenset[str], resumed: bool) -> Query:
    given -= {name for c in listing.conditions for name in _PLACEHOLDER.findall(c)}
    index = listing.choose(given)
    walked = [c for c in index.middle if c not in given]
    residual = sorted(given - {*index.prefix, *index.middle})
    direction = " DESC" if listing.descending else ""
    order_by = ", ".join(f"{listing.ordered(c)}{direction}" for c in listing.order)
    shared = [f"{c} = :{c}" for c in (*index.prefix, *(c for c in index.middle if c in given))]
    shared += [f"{c} = :{c}" for c in residual]
    shared += [index.where] if index.where else []
    shared += list(listing.conditions)
    if resumed:
        keys = ", ".join(f":after{i}" for i in range(len(listing.order)))
        compared = ", ".join(listing.ordered(c) for c in listing.order)
        shared.append(f"({compared}) {'<' if listing.descending else '>'} ({keys})")
    columns = ", ".join(dict.fromkeys((*listing.order, *listing.key)))
    branches = []
    for combination in itertools.product(*(listing.values[c] for c in walked)):
        conditions = shared + [
            f"{c} = {_literal(v)}" for c, v in zip(walked, combination, strict=True)
        ]
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        branches.append(
            f"(SELECT {columns} FROM {listing.table}{where} "  # noqa: S608 - constants
            f"ORDER BY {order_by} LIMIT :limit)"
        )
    merged = " UNION ALL ".join(branches)
    sql = (
        branches[0]
        if len(branches) == 1
        else f"SELECT * FROM ({merged}) AS page ORDER BY {order_by} LIMIT :limit"  # noqa: S608
    )
    numbered, params = _numbered(sql)
    return Query(numbered, params, index, len(branches))


def present(**values: object) -> dict[str, object]:
    """The filters that were given (None: not given), as `Query.args` takes them."""
    return {name: value for name, value in values.items() if value is not None}


def _literal(value: str) -> str:
    """A stored value of an enumerated column (a constant of ours) as an SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """:name placeholders to $1, $2...; the names in the order of their numbers."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(names)
