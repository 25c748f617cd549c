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
    Condition,
    Definition,
    Facts,
    FailedAbove,
    FailureRate,
    NewErrorCode,
    Rollout,
    Scope,
    SilentFor,
    StuckAbove,
    changed,
    confirmed,
    decide,
    ended,
    read,
    stopped,
)
from tracker.domain.notifications import AlertChanged, AlertStopped, TaskProgress

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


def step(
    alert: Alert | None, when: Condition, reading: Facts
) -> tuple[Alert | None, AlertChanged | None]:
    """One reading: the change decided, and the alert folded from it (as the log does)."""
    change = decide(alert, "g", ROLLOUT, when, reading)
    return (alert if change is None else changed(alert, change)), change


def test_an_alert_fires_once_and_resolves_once() -> None:
    when = FailedAbove(failed_above=2)
    alert, change = step(None, when, facts(fail=1))
    assert (alert, change) == (None, None)  # never true: no alert at all
    alert, change = step(None, when, facts(fail=3))
    assert alert is not None
    assert change is not None
    assert (change.state, change.value, change.threshold, change.id, change.number) == (
        "firing",
        3,
        2,
        "g:op-1:software:1",
        1,
    )
    again, none = step(alert, when, facts(fail=5))
    assert none is None  # still firing: no new change, and the row does not move either
    assert again == alert
    resolved, change = step(again, when, facts(fail=1, quiet=9))
    assert resolved is not None
    assert change is not None
    assert (change.state, change.number, change.id, resolved.resolved_at) == (
        "resolved",
        2,
        "g:op-1:software:2",
        T0 + timedelta(seconds=9),
    )
    assert resolved.fired_at == change.fired_at == T0
    assert resolved.state == "resolved"


def test_a_resolved_new_code_alert_fires_again_only_for_another_code() -> None:
    when = NewErrorCode(new_error_code=True)
    fired, change = step(None, when, facts(codes=("E1",)))
    assert change is not None
    assert change.new_codes == ("E1",)
    resolved, change = step(fired, when, facts(codes=()))
    assert change is not None
    assert (change.state, change.known_codes) == ("resolved", ("E1",))
    assert resolved is not None
    quiet, nothing = step(resolved, when, facts(codes=("E1",)))
    assert nothing is None  # E1 again: known
    refired, change = step(quiet, when, facts(codes=("E1", "E2")))
    assert change is not None
    assert (change.state, change.value, change.new_codes) == ("firing", 1, ("E2",))
    assert isinstance(refired, Alert)


def test_a_stop_outcome_belongs_to_its_firing() -> None:
    when = FailedAbove(failed_above=0)
    fired, change = step(None, when, facts(fail=1))
    assert change is not None
    outcome = AlertStopped(
        guard="g", operation_id="op-1", track="software", number=1, outcome="stopping", at=T0
    )
    stopped_now = stopped(fired, outcome)
    assert stopped_now is not None
    assert stopped_now.stop == ("stopping", None, T0)
    resolved, _ = step(stopped_now, when, facts(fail=0))
    assert resolved is not None
    assert resolved.stop == stopped_now.stop  # the episode keeps what its stop came to
    refired, _ = step(resolved, when, facts(fail=2))
    assert refired is not None
    assert refired.stop is None  # a new firing starts afresh...
    assert stopped(refired, outcome) is None  # ...and an old firing's outcome is not its own
    assert stopped(None, outcome) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10), max_size=30))
def test_changes_alternate_and_match_every_crossing(failures: list[int]) -> None:
    """However the counters move, the alert's changes alternate firing/resolved, number 1, 2,
    3..., and there is one exactly where the condition crosses its threshold; the alert folded
    from the changes alone is the one the readings saw."""
    when = FailedAbove(failed_above=4)
    alert: Alert | None = None
    changes: list[AlertChanged] = []
    was, crossings = False, 0
    for number, fail in enumerate(failures):
        now = fail > 4
        crossings += now != was
        was = now
        alert, change = step(alert, when, facts(fail=fail, quiet=number))
        if change is not None:
            changes.append(change)
    assert len(changes) == crossings
    assert [c.state for c in changes] == ["firing", "resolved"] * (len(changes) // 2) + (
        ["firing"] if len(changes) % 2 else []
    )
    assert [c.number for c in changes] == list(range(1, len(changes) + 1))
    assert len({c.id for c in changes}) == len(changes)
    folded: Alert | None = None
    for change in changes:
        folded = changed(folded, change)
    assert folded == alert


def test_a_firing_new_code_alert_fires_again_for_each_code_beyond_it() -> None:
    when = NewErrorCode(new_error_code=True)
    fired, _ = step(None, when, facts(codes=("E1",)))
    same, nothing = step(fired, when, facts(codes=("E1",), quiet=1))
    assert nothing is None
    again, change = step(same, when, facts(codes=("E1", "E2"), quiet=2))
    assert change is not None
    assert (change.state, change.number, change.new_codes) == ("firing", 2, ("E1", "E2"))
    assert again is not None
    assert again.fired_at == T0  # the same episode: it began with E1
    _, change = step(again, when, facts(codes=(), quiet=3))
    assert change is not None
    assert (change.state, change.known_codes) == ("resolved", ("E1", "E2"))


def test_a_replaced_or_deleted_guard_ends_its_alert() -> None:
    fired, _ = step(None, FailedAbove(failed_above=0), facts(fail=2))
    assert fired is not None
    change = ended(fired, "guard deleted", T0 + timedelta(seconds=5))
    assert (change.state, change.number, change.reason, change.value) == (
        "resolved",
        2,
        "guard deleted",
        2,
    )
    assert changed(fired, change).resolved_at == T0 + timedelta(seconds=5)


def test_a_stop_is_asked_only_of_what_the_platform_can_confirm() -> None:
    confirmable: list[dict[str, object]] = [
        {"failed_above": 3},
        {"failure_rate_above": 0.1, "min_results": 10},
    ]
    for when in confirmable:
        assert Definition.model_validate({"when": when, "stop_task": True}).stop_task
    unconfirmable: list[dict[str, object]] = [
        {"stuck_above": 1, "stuck_for": 60},
        {"silent_for": 60},
        {"new_error_code": True},
    ]
    for when in unconfirmable:
        with pytest.raises(ValidationError, match="stop_task needs"):
            Definition.model_validate({"when": when, "stop_task": True})
    progress = TaskProgress(total=100, success=40, fail=10, processing=50)
    assert confirmed(FailedAbove(failed_above=9), progress) == (10, 9, True)
    assert confirmed(FailureRate(failure_rate_above=0.2, min_results=50), progress) == (
        0.2,
        0.2,
        False,
    )
    assert confirmed(SilentFor(silent_for=60), progress) is None
