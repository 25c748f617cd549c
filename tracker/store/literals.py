"""SQL spellings of the domain's values, generated from their one declaration.

A partial index is used only when the query repeats its predicate (the planner proves one from
the other on parsed expressions), so the predicates the listings need verbatim are built here
from the same tuples the code iterates over, and tests/integration/test_enum_predicates.py holds
the ones in sql/ to them. Only constants from the code reach these strings, never a request's
values (those are always `$n` parameters).
"""

from __future__ import annotations

from collections.abc import Iterable


def text(value: str) -> str:
    """A text literal: 'it''s'."""
    return "'" + value.replace("'", "''") + "'"


def one_of(column: str, values: Iterable[str]) -> str:
    """`column IN ('a', 'b')`, in the order given."""
    return f"{column} IN ({', '.join(map(text, values))})"
