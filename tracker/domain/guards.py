"""Rollout guards: named rules over a rollout's counters, and the alerts they raise (issue 25).

Pure: a guard's definition (what `PUT /v1/guards/{name}` takes), what it reads of a rollout
(`Facts`: the counters the append keeps, plus the stuck count and the time when a condition
needs them), its reading (`read`), and how an alert moves (`evolve_alert`): an alert is one
(guard, rollout); it fires when its condition becomes true and resolves when it stops being
true, once each, however many deliveries keep it true.

The conditions (DESIGN.md, "Guards and alerts"), one per guard:
- `failure_rate_above` (a share, 0..1) once at least `min_results` results are in;
- `failed_above`: more failed devices than this;
- `stuck_above` devices busy for longer than `stuck_for` seconds;
- `new_error_code`: an error code the rollout did not have when the alert last resolved (any
  code, until it has fired once: a rollout's first error code is new);
- `silent_for` seconds without activity while devices are still busy.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from tracker.domain.notifications import Id, Track

Platform = Literal["oceanconnect", "iotda"]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Seconds = Annotated[int, Field(ge=1, le=365 * 86400)]
Count = Annotated[int, Field(ge=0)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Scope(_Closed):
    """Which rollouts a guard watches: all that match every field given."""

    app_id: Id | None = None
    track: Track | None = None
    platform: Platform | None = None
    operation_id: Id | None = None

    def covers(self, rollout: Rollout) -> bool:
        return (
            (self.app_id is None or self.app_id == rollout.app_id)
            and (self.track is None or self.track == rollout.track)
            and (self.platform is None or self.platform == rollout.platform)
            and (self.operation_id is None or self.operation_id == rollout.operation_id)
        )


class FailureRate(_Closed):
    failure_rate_above: Annotated[float, Field(ge=0, lt=1)]
    min_results: Annotated[int, Field(ge=1)] = 1


class FailedAbove(_Closed):
    failed_above: Count


class StuckAbove(_Closed):
    stuck_above: Count
    stuck_for: Seconds


class NewErrorCode(_Closed):
    new_error_code: Literal[True]


class SilentFor(_Closed):
    silent_for: Seconds


Condition = FailureRate | FailedAbove | StuckAbove | NewErrorCode | SilentFor


class Rollout(NamedTuple):
    """Which rollout, as a scope matches it."""

    operation_id: str
    track: Track
    app_id: str
    platform: Platform


class Facts(NamedTuple):
    """What a condition reads of a rollout at one moment."""

    success: int
    fail: int
    busy: int  # members with work ahead (not idle, no result; IoTDA: Waitting, Processing...)
    error_codes: frozenset[str]  # of its failed members
    last_activity_at: datetime
    at: datetime  # the moment read: the event's time (never a clock read during a fold)
    stuck: int | None = None  # busy longer than the guard's stuck_for, when it asks


class Reading(NamedTuple):
    value: float
    threshold: float
    firing: bool


def read(when: Condition, facts: Facts, baseline: frozenset[str] = frozenset()) -> Reading:
    """The condition's value for the rollout, its threshold, and whether it holds.
    `baseline`: the error codes a `new_error_code` guard does not count as new."""
    match when:
        case FailureRate(failure_rate_above=share, min_results=least):
            results = facts.success + facts.fail
            rate = facts.fail / results if results else 0.0
            return Reading(rate, share, results >= least and rate > share)
        case FailedAbove(failed_above=most):
            return Reading(facts.fail, most, facts.fail > most)
        case StuckAbove(stuck_above=most):
            stuck = facts.stuck or 0
            return Reading(stuck, most, stuck > most)
        case NewErrorCode():
            new = len(facts.error_codes - baseline)
            return Reading(new, 0, new > 0)
        case SilentFor(silent_for=quiet):
            silent = max(0.0, (facts.at - facts.last_activity_at).total_seconds())
            return Reading(silent, quiet, facts.busy > 0 and silent > quiet)
    raise AssertionError(when)  # pragma: no cover - the union is closed


State = Literal["firing", "resolved"]


class Alert(NamedTuple):
    guard: str
    operation_id: str
    track: Track
    app_id: str
    state: State
    value: float
    threshold: float
    fired_at: datetime
    resolved_at: datetime | None
    baseline: frozenset[str]  # new_error_code: the codes not counted as new
    seen: frozenset[str]  # ...and those seen while it fires: known, once it resolves
    changes: int  # how many times it fired or resolved: a change's id is (guard, rollout, n)


class AlertChange(NamedTuple):
    """One firing or resolving: what a webhook says, and what the outbox delivers once."""

    guard: str
    operation_id: str
    track: Track
    state: State
    value: float
    threshold: float
    at: datetime
    number: int  # the alert's n-th change: with the guard and the rollout, its unique id

    @property
    def id(self) -> str:
        return f"{self.guard}:{self.operation_id}:{self.track}:{self.number}"


def evolve_alert(
    alert: Alert | None, guard: str, rollout: Rollout, when: Condition, facts: Facts
) -> tuple[Alert | None, AlertChange | None]:
    """The alert after a new reading, and its change if it fired or resolved; (None, None)
    when nothing moved. A rollout first read with its condition false has no alert."""
    baseline = _baseline(alert, when)
    reading = read(when, facts, baseline)
    if alert is None and not reading.firing:
        return None, None
    was_firing = alert is not None and alert.state == "firing"
    seen = (frozenset() if alert is None else alert.seen) | (
        facts.error_codes if isinstance(when, NewErrorCode) and reading.firing else frozenset()
    )
    if reading.firing == was_firing:
        assert alert is not None  # noqa: S101 - not firing and no alert returned above
        held = alert._replace(value=reading.value, threshold=reading.threshold, seen=seen)
        return (None, None) if held == alert else (held, None)
    number = 1 if alert is None else alert.changes + 1
    state: State = "firing" if reading.firing else "resolved"
    change = AlertChange(
        guard, rollout.operation_id, rollout.track, state, *reading[:2], facts.at, number
    )
    changed = Alert(
        guard=guard,
        operation_id=rollout.operation_id,
        track=rollout.track,
        app_id=rollout.app_id,
        state=state,
        value=reading.value,
        threshold=reading.threshold,
        fired_at=facts.at if reading.firing or alert is None else alert.fired_at,
        resolved_at=None if reading.firing else facts.at,
        # Resolved: the codes it fired for are known, and only a code beyond them is new again.
        baseline=baseline if reading.firing else baseline | seen,
        seen=seen if reading.firing else frozenset(),
        changes=number,
    )
    return changed, change


def _baseline(alert: Alert | None, when: Condition) -> frozenset[str]:
    if not isinstance(when, NewErrorCode):
        return frozenset()
    return frozenset() if alert is None else alert.baseline
