"""Which of a device track's sub-operations is the one it is in now, with no clock to ask.

OceanConnect's notifications carry no time, and the platform re-pushes a failed delivery
minutes later or drains a backlog after an outage, so a device's operations can arrive in any
order, interleaved. The order they ran in is read from what their deliveries say, and only
from that, so that every arrival order of the same deliveries names the same sub-operation:

1. **An unfinished sub-operation is the current one.** A device runs one upgrade at a time:
   the platform fails a sub-task that would overlap another with "Task Conflict: check whether
   the device has a software or firmware upgrade in progress" (IoTDA FAQ, iot_faq_01001), and
   it notifies a sub-task's result "when a software upgrade task is complete" (iot_06_0048),
   failed or not. So of a device's sub-operations every one but the last has finished (its
   result, or idle), and one that has not finished is the last. (That a sub-task the platform
   aborts on a timeout, "如果响应超时, 平台中止升级任务" (PCP), also gets its FAIL pushed is our
   reading: the documents do not say otherwise.)
2. **Otherwise the version chain decides.** Each result reports the version the device
   started from (`sourceVersion`) and the one it runs after (`curVersion`), so the device's
   version history is one trail through every finished sub-operation, each starting from the
   version the one before it left (a failure leaves it where it was). The last sub-operation is
   one that can end such a trail: a rollback to an earlier version (1.0 → 2.0 → 3.0 → 2.0) is
   placed as it happened. Where the versions admit no such trail (a result lost, a version
   changed outside any operation), a sub-operation that started from the version another left,
   when that other did not start from the version this one left, is known to come after it.
   A rollback to the very first version (1.0 → 2.0 → 1.0) is a loop: it could start anywhere,
   and tells nothing.
3. **Otherwise, the greatest (operationId, subOperationId)**, by code point. Nothing in the
   deliveries tells then (two finished sub-operations without a result, or both failed on the
   same version), so the choice is arbitrary, but the same for every arrival order, every
   replay and every process. Both finished, so neither is stuck; each rollout's members are
   exact either way: only which finished operation the track names depends on it.

A sub-operation that is not the current one still counts in its own rollout (operation.py);
it never moves the device's track, and never makes the device stuck. While the platform drains
a backlog, an earlier operation may look unfinished until its last deliveries arrive, and the
track names it meanwhile; it converges once they have.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from tracker.domain.suboperation import SubOperation, finished


def follows(later: SubOperation, earlier: SubOperation) -> bool:
    """Whether the results show `later` ran after `earlier` (rule 2's fallback)."""
    a, b = earlier.result, later.result
    if a is None or b is None:
        return False
    started, left = b.source_version, a.current_version
    return started is not None and started == left and a.source_version != b.current_version


def latest(subs: Sequence[SubOperation]) -> SubOperation | None:
    """The sub-operation the rules above put last; None if there is none."""
    if len(subs) <= 1:
        return subs[0] if subs else None
    pool = [s for s in subs if not finished(s)] or list(subs)
    if len(pool) > 1:
        pool = _last_by_versions(pool)
    return max(pool, key=_ids)


class Standing(NamedTuple):
    """Where a set of sub-operations stands: the current one, the last with a result, and the
    last whose result reports the version the device runs (each None if there is none)."""

    now: SubOperation | None
    last: SubOperation | None
    versioned: SubOperation | None


def standing(subs: Sequence[SubOperation]) -> Standing:
    """The current sub-operation, and the last result and version as of it: its own when it
    has them (so all three describe one order the platform could have run them in)."""
    now = latest(subs)
    last = now
    if now is None or now.result is None:
        last = latest([s for s in subs if s.result is not None])
    if last is not None and last.result is not None and last.result.current_version is not None:
        return Standing(now, last, last)
    reported = [s for s in subs if s.result is not None and s.result.current_version is not None]
    return Standing(now, last, latest(reported))


Step = tuple[str, str]  # (source version, current version)


def _last_by_versions(pool: list[SubOperation]) -> list[SubOperation]:
    """Those of `pool` (all finished) that rule 2 leaves as candidates for the last.

    One whose result gives no versions (or that has none) cannot be placed in the trail: it may
    come last, unless every such one is needed between two pieces of the trail (the version
    changed while it ran, unseen).
    """
    placed = [s for s in pool if _step(s) is not None]
    unplaced = [s for s in pool if _step(s) is None]
    if not placed:
        return unplaced
    walk = [_step(s) for s in placed]
    ends = [s for i, s in enumerate(placed) if _trail_ends_at(walk[:i] + walk[i + 1 :], s)]
    if ends:
        return ends + unplaced
    # No one trail through them all: what pairs of results show.
    ends = [s for s in placed if not any(follows(o, s) for o in placed if o is not s)] or placed
    return ends if _pieces(walk) - 1 >= len(unplaced) else ends + unplaced


def _step(sub: SubOperation) -> Step | None:
    r = sub.result
    if r is None or r.source_version is None or r.current_version is None:
        return None
    return r.source_version, r.current_version


def _trail_ends_at(steps: list[Step | None], last: SubOperation) -> bool:
    """Whether `steps` can all be taken, once each, in a walk that ends where `last` starts."""
    start = _step(last)
    assert start is not None  # noqa: S101 - only placed sub-operations come here
    if not steps:
        return True  # it alone
    balance, pieces = _balance(steps)
    end = start[0]
    if len(set(pieces.values())) != 1 or end not in balance:
        return False
    starts = [v for v, n in balance.items() if n > 0]
    if not starts:  # a loop: it may start, and so end, at any of its versions
        return True
    return (
        len(starts) == 1
        and balance[starts[0]] == 1
        and balance[end] == -1
        and all(n == 0 for v, n in balance.items() if v not in (starts[0], end))
    )


def _pieces(steps: list[Step | None]) -> int:
    """The fewest walks that take every step once (each piece of the version graph needs one
    walk per surplus of departures over arrivals at its versions, and at least one)."""
    balance, pieces = _balance(steps)
    surplus: dict[str, int] = {}
    for version, n in balance.items():
        root = pieces[version]
        surplus[root] = surplus.get(root, 0) + max(0, n)
    return sum(max(1, n) for n in surplus.values())


def _balance(steps: list[Step | None]) -> tuple[dict[str, int], dict[str, str]]:
    """Each version's departures less arrivals, and the piece of the graph it is in."""
    balance: dict[str, int] = {}
    linked: dict[str, str] = {}  # union-find
    for step in steps:
        assert step is not None  # noqa: S101 - only placed sub-operations come here
        source, current = step
        balance[source] = balance.get(source, 0) + 1
        balance[current] = balance.get(current, 0) - 1
        linked[_root(linked, source)] = _root(linked, current)
    return balance, {v: _root(linked, v) for v in balance}


def _root(linked: dict[str, str], version: str) -> str:
    while (up := linked.get(version, version)) != version:
        version = up
    return version


def _ids(sub: SubOperation) -> tuple[str, str]:
    return sub.operation_id, sub.sub_operation_id
