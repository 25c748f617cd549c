"""Which sub-operation a device track is in now (domain/precedence.py), rule by rule. Each case
is tried with the ids for and against it, so that the evidence, not the ids, decides."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.builders import T0, at, sw_result
from tracker.domain.precedence import follows, latest, standing
from tracker.domain.suboperation import SubOperation, UpgradeResult, result_of

Versions = tuple[str, str] | None  # (source, current) a result reports; None: no versions


def sub(
    op: str,
    state: str | None = "idle",
    result: str | None = None,
    versions: Versions = None,
) -> SubOperation:
    """A sub-operation of device d-1 that reached `state`, with `result` if any."""
    said: UpgradeResult | None = None
    if result is not None:
        source, current = versions if versions is not None else (None, None)
        report = sw_result(result, source=source, cur=current, target="9.0", op=op)  # type: ignore[arg-type]
        said = result_of(at(1, report))
    return SubOperation(
        "d-1",
        "software",
        op,
        "s",
        "app",
        state,  # type: ignore[arg-type]
        None if state is None else T0,
        said,
        frozenset(),
        T0,
        1,
        T0 + timedelta(seconds=1),
    )


def ok(op: str, source: str, current: str) -> SubOperation:
    return sub(op, "idle", "SUCCESS", (source, current))


def failed(op: str, version: str) -> SubOperation:
    return sub(op, "idle", "FAIL", (version, version))


def now(*subs: SubOperation) -> str:
    """The current one's operation, whatever order the sub-operations are given in."""
    found = {latest(list(order)) for order in (subs, subs[::-1])}
    assert len(found) == 1
    (one,) = found
    assert one is not None
    return one.operation_id


def test_none_and_one() -> None:
    assert latest([]) is None
    only = sub("op-1", "downloading")
    assert latest([only]) is only


@pytest.mark.parametrize(("running", "done"), [("op-a", "op-z"), ("op-z", "op-a")])
def test_an_unfinished_one_is_the_current_one(running: str, done: str) -> None:
    assert now(sub(running, "downloading"), ok(done, "1.0", "2.0")) == running
    assert now(sub(running, "updating"), sub(done, "idle")) == running


def test_of_two_unfinished_the_greatest_ids() -> None:
    assert now(sub("op-a", "downloading"), sub("op-b", "updating")) == "op-b"


@pytest.mark.parametrize(("first", "then"), [("op-a", "op-z"), ("op-z", "op-a")])
def test_a_failure_after_a_success_starts_where_the_success_left(first: str, then: str) -> None:
    assert now(ok(first, "1.0", "2.0"), failed(then, "2.0")) == then
    assert now(failed(first, "1.0"), ok(then, "1.0", "2.0")) == then


def test_two_failures_on_one_version_tell_nothing_the_greatest_ids() -> None:
    assert now(failed("op-a", "1.0"), failed("op-b", "1.0")) == "op-b"


@pytest.mark.parametrize("rollback", ["op-a", "op-m", "op-z"])
def test_a_rollback_to_an_earlier_version_is_placed_as_it_happened(rollback: str) -> None:
    # 1.0 -> 2.0 -> 3.0 -> 2.0: pairs of results alone cannot order the last two.
    others = [o for o in ("op-a", "op-m", "op-z") if o != rollback]
    history = (ok(others[0], "1.0", "2.0"), ok(others[1], "2.0", "3.0"), ok(rollback, "3.0", "2.0"))
    assert now(*history) == rollback


def test_a_rollback_to_the_first_version_is_a_loop_that_tells_nothing() -> None:
    # 1.0 -> 2.0 -> 1.0, or 2.0 -> 1.0 -> 2.0, and a failure on 1.0 anywhere in it.
    assert now(ok("op-a", "1.0", "2.0"), ok("op-b", "2.0", "1.0")) == "op-b"
    loop = (ok("op-a", "1.0", "2.0"), ok("op-b", "2.0", "1.0"), failed("op-c", "1.0"))
    assert now(*loop) == "op-c"


@pytest.mark.parametrize(("earlier", "later", "apart"), [("op-z", "op-b", "op-a")])
def test_where_no_trail_takes_them_all_pairs_of_results_decide(
    earlier: str, later: str, apart: str
) -> None:
    # 1.0 -> 2.0 -> 3.0, and apart 5.0 -> 6.0 (the version changed outside any operation).
    history = (ok(earlier, "1.0", "2.0"), ok(later, "2.0", "3.0"), ok(apart, "5.0", "6.0"))
    assert now(*history) == later  # not `earlier`, whose ids are the greatest


def test_one_without_versions_may_come_after_the_trail() -> None:
    assert now(ok("op-a", "1.0", "2.0"), sub("op-b", "idle")) == "op-b"
    assert now(ok("op-b", "1.0", "2.0"), sub("op-a", "idle")) == "op-b"
    assert now(ok("op-a", "1.0", "2.0"), sub("op-b", "idle", "FAIL")) == "op-b"


def test_one_without_versions_needed_between_two_pieces_cannot_be_last() -> None:
    # A failure on 1.0 and one on 3.0: something moved the device from 1.0 to 3.0 unseen, and
    # the only candidate is the sub-operation that reported no versions.
    pieces = (failed("op-a", "1.0"), failed("op-b", "3.0"), sub("op-z", "idle"))
    assert now(*pieces) == "op-b"
    # Two such, one piece to bridge: either may be last.
    two = (*pieces, sub("op-y", "idle"))
    assert now(*two) == "op-z"
    # Three pieces, two bridges needed: neither.
    three = (*two, failed("op-c", "5.0"))
    assert now(*three) == "op-c"


def test_two_upgrades_from_one_version_need_a_bridge_between_them() -> None:
    # 1.0 -> 2.0 and 1.0 -> 3.0: the device went back to 1.0 unseen in between, and the only
    # sub-operation that could have done it, reporting no versions, was that bridge.
    assert now(ok("op-a", "1.0", "2.0"), ok("op-b", "1.0", "3.0"), sub("op-z", "idle")) == "op-b"


def test_with_a_bridge_to_spare_one_without_versions_may_be_last() -> None:
    # 1.0 -> 2.0, then a failure on 5.0: one of the two without versions moved the device
    # from 2.0 to 5.0 unseen; the other may have come last.
    pieces = (ok("op-a", "1.0", "2.0"), failed("op-b", "5.0"))
    assert now(*pieces, sub("op-y", "idle"), sub("op-z", "idle")) == "op-z"


def test_follows_needs_both_results_and_their_versions() -> None:
    a, b = ok("op-a", "1.0", "2.0"), ok("op-b", "2.0", "3.0")
    assert follows(b, a)
    assert not follows(a, b)
    assert not follows(b, sub("op-a", "idle"))
    assert not follows(sub("op-b", "idle"), a)
    assert not follows(sub("op-b", "idle", "FAIL", ("2.0", "2.0")), sub("op-a", "idle", "FAIL"))
    assert not follows(failed("op-b", "1.0"), failed("op-a", "1.0"))  # each from the other's


def test_standing_takes_the_current_one_s_result_and_version_when_it_has_them() -> None:
    done, running = ok("op-a", "1.0", "2.0"), sub("op-b", "downloading")
    assert standing([done, running]) == (running, done, done)
    failed_no_version = sub("op-c", "idle", "FAIL", None)
    current, last, versioned = standing([done, failed_no_version])
    assert (current, last, versioned) == (failed_no_version, failed_no_version, done)
    assert standing([]) == (None, None, None)
    # The current one reports a version but not where it started: its own version still
    # counts, though the results alone would place another last.
    current = sub("op-d", "idle", "FAIL", None)._replace(
        result=result_of(at(1, sw_result("FAIL", source=None, cur="3.0", op="op-d")))
    )
    subs = [failed("op-a", "3.0"), failed("op-b", "1.0"), sub("op-c", "idle"), current]
    assert standing(subs) == (current, current, current)
