"""Guards' conditions and alerts (tracker/domain/guards.py): what each condition reads, and an
alert that fires and resolves once per crossing, however many readings keep it where it is."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.unit.builders import T0
from tracker.domain.guards import (
    Alert,
    Facts,
    FailedAbove,
    FailureRate,
    NewErrorCode,
    Rollout,
    Scope,
    SilentFor,
    StuckAbove,
    evolve_alert,
    read,
)

ROLLOUT = Rollout("op-1", "software", "app-1", "oceanconnect")


def facts(
    success: int = 0,
    fail: int = 0,
    busy: int = 0,
    codes: tuple[str, ...] = (),
    quiet: float = 0,
    stuck: int | None = None,
) -> Facts:
    return Facts(
        success,
        fail,
        busy,
        frozenset(codes),
        T0,
        T0 + timedelta(seconds=quiet),
        stuck,
    )


def test_the_failure_rate_counts_only_once_enough_results_are_in() -> None:
    when = FailureRate(failure_rate_above=0.2, min_results=20)
    assert read(when, facts(success=5, fail=5)) == (0.5, 0.2, False)  # 10 results: too few
    assert read(when, facts(success=15, fail=5)) == (0.25, 0.2, True)
    assert read(when, facts(success=16, fail=4)) == (0.2, 0.2, False)  # above, not at
    assert read(when, facts()).firing is False  # no result yet: no division by zero


def test_counts_stuck_silence_and_new_codes() -> None:
    assert read(FailedAbove(failed_above=3), facts(fail=4)).firing
    assert not read(FailedAbove(failed_above=3), facts(fail=3)).firing
    assert read(StuckAbove(stuck_above=0, stuck_for=600), facts(stuck=1)).firing
    assert not read(StuckAbove(stuck_above=0, stuck_for=600), facts(stuck=None)).firing
    assert read(SilentFor(silent_for=60), facts(busy=1, quiet=61)).firing
    assert not read(SilentFor(silent_for=60), facts(busy=0, quiet=3600)).firing  # all done
    assert read(NewErrorCode(new_error_code=True), facts(codes=("E1",))).firing
    assert not read(
        NewErrorCode(new_error_code=True), facts(codes=("E1",)), frozenset({"E1"})
    ).firing


def test_a_guard_takes_exactly_one_known_condition() -> None:
    with pytest.raises(ValidationError):
        FailureRate.model_validate({"failure_rate_above": 1.5})
    with pytest.raises(ValidationError):
        FailedAbove.model_validate({"failed_above": 3, "min_results": 2})  # not its field
    with pytest.raises(ValidationError):
        Scope.model_validate({"platform": "mqtt"})


def test_a_scope_covers_what_matches_every_field_it_names() -> None:
    assert Scope().covers(ROLLOUT)
    assert Scope(app_id="app-1", track="software").covers(ROLLOUT)
    assert not Scope(platform="iotda").covers(ROLLOUT)
    assert not Scope(operation_id="op-2").covers(ROLLOUT)


def test_an_alert_fires_once_and_resolves_once() -> None:
    when = FailedAbove(failed_above=2)
    alert, change = evolve_alert(None, "g", ROLLOUT, when, facts(fail=1))
    assert (alert, change) == (None, None)  # never true: no alert at all
    alert, change = evolve_alert(None, "g", ROLLOUT, when, facts(fail=3))
    assert alert is not None
    assert change is not None
    assert (change.state, change.value, change.threshold, change.id) == (
        "firing",
        3,
        2,
        "g:op-1:software:1",
    )
    again, none = evolve_alert(alert, "g", ROLLOUT, when, facts(fail=5))
    assert none is None  # still firing: the value moves, no new change
    assert again is not None
    assert again.value == 5
    resolved, change = evolve_alert(again, "g", ROLLOUT, when, facts(fail=1, quiet=9))
    assert resolved is not None
    assert change is not None
    assert (change.state, change.number, resolved.resolved_at) == (
        "resolved",
        2,
        T0 + timedelta(seconds=9),
    )
    assert resolved.fired_at == T0


def test_a_resolved_new_code_alert_fires_again_only_for_another_code() -> None:
    when = NewErrorCode(new_error_code=True)
    fired, _ = evolve_alert(None, "g", ROLLOUT, when, facts(codes=("E1",)))
    resolved, change = evolve_alert(fired, "g", ROLLOUT, when, facts(codes=()))
    assert change is not None
    assert change.state == "resolved"
    assert resolved is not None
    quiet, nothing = evolve_alert(resolved, "g", ROLLOUT, when, facts(codes=("E1",)))
    assert nothing is None  # E1 again: known
    refired, change = evolve_alert(quiet or resolved, "g", ROLLOUT, when, facts(codes=("E1", "E2")))
    assert change is not None
    assert (change.state, change.value) == ("firing", 1)
    assert isinstance(refired, Alert)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), max_size=30))
def test_changes_alternate_and_match_every_crossing(failures: list[int]) -> None:
    """However the counters move, the alert's changes alternate firing/resolved, number 1, 2,
    3..., and there is one exactly where the condition crosses its threshold."""
    when = FailedAbove(failed_above=4)
    alert, changes, was = None, [], False
    crossings = 0
    for step, fail in enumerate(failures):
        now = fail > 4
        crossings += now != was
        was = now
        moved, change = evolve_alert(alert, "g", ROLLOUT, when, facts(fail=fail, quiet=step))
        alert = moved or alert
        if change is not None:
            changes.append(change)
    assert len(changes) == crossings
    assert [c.state for c in changes] == ["firing", "resolved"] * (len(changes) // 2) + (
        ["firing"] if len(changes) % 2 else []
    )
    assert [c.number for c in changes] == list(range(1, len(changes) + 1))
