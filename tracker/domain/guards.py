"""Rollout guards: named rules over a rollout's counters, and the alerts they raise (issue 25).

Pure: a guard's definition (what `PUT /v1/guards/{name}` takes), what it reads of a rollout
(`Facts`: the counters the append keeps, plus the stuck count and the time when a condition
needs them), its reading (`read`), and how an alert moves: an alert is one (guard, rollout); it
fires when its condition becomes true and resolves when it stops being true, once each, however
many deliveries keep it true. `decide` writes each change as an event (`AlertChanged`), and the
alert is folded from those events alone (`changed`, `stopped`): live and replay build the same.

The conditions (DESIGN.md, "Guards and alerts"), one per guard:
- `failure_rate_above` (a share, 0..1) once at least `min_results` results are in;
- `failed_above`: more failed devices than this;
- `stuck_above` devices busy for longer than `stuck_for` seconds;
- `new_error_code`: an error code the rollout did not have when the alert last resolved (any
  code, until it has fired once: a rollout's first error code is new);
- `silent_for` seconds without activity while devices are still busy.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from tracker.domain.notifications import (
    AlertChanged,
    AlertEvent,
    AlertState,
    AlertStopped,
    EndReason,
    GuardName,
    Id,
    Platform,
    StopOutcome,
    TaskProgress,
    Track,
)

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
CONFIRMABLE = (FailureRate, FailedAbove)  # read from a task's own counters as well as ours


class Webhook(_Closed):
    """Where a guard's alert changes are POSTed, and the secret they are signed with."""

    url: Annotated[str, Field(min_length=1, max_length=2048)]
    secret: Annotated[str, Field(min_length=16, max_length=1024)]


class Definition(_Closed):
    """A guard as `PUT /v1/guards/{name}` takes it. `stop_task`: also stop an IoTDA batch task
    whose alert fires (StopBatchTask); an OceanConnect rollout has its webhook as the action."""

    scope: Scope = Scope()
    when: Condition
    webhook: Webhook | None = None
    stop_task: bool = False

    @model_validator(mode="after")
    def _stop_only_what_iotda_confirms(self) -> Definition:
        # A stop acts on the platform: it is made only once IoTDA's own counters of the task
        # (task_progress) show the condition too (`confirmed`), which only these can.
        if self.stop_task and not isinstance(self.when, CONFIRMABLE):
            raise ValueError(
                "stop_task needs failure_rate_above or failed_above: IoTDA's own counters must "
                "confirm the condition before a task is stopped"
            )
        return self


NAME_RULE = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"
CONDITIONS = (
    "failure_rate_above (a share, 0 to 1) with min_results, failed_above, stuck_above with "
    "stuck_for (seconds), new_error_code: true, or silent_for (seconds)"
)
_NAMES: TypeAdapter[str] = TypeAdapter(GuardName)


def is_name(text: str) -> bool:
    try:
        _NAMES.validate_python(text)
    except ValidationError:
        return False
    return True


def problems(invalid: ValidationError) -> list[dict[str, str]]:
    """What is wrong with a definition, a field at a time: one entry for `when` (the union's
    every member that did not fit says nothing a person can act on)."""
    found = [
        {"field": ".".join(str(p) for p in e["loc"][:2]), "problem": e["msg"]}
        for e in invalid.errors()
    ]
    if any(p["field"].startswith("when") for p in found):
        found = [p for p in found if not p["field"].startswith("when")]
        found.append({"field": "when", "problem": f"exactly one condition: {CONDITIONS}"})
    return found


class Guard(NamedTuple):
    """A guard as stored and evaluated: its definition without the webhook's secret (that is
    kept apart, store/guards.py, and only the deliverer reads it)."""

    name: str
    scope: Scope
    when: Condition
    webhook_url: str | None
    stop_task: bool
    created_at: datetime
    updated_at: datetime


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


class Stop(NamedTuple):
    """What became of a guard's StopBatchTask for the firing it answered."""

    outcome: StopOutcome
    detail: str | None
    at: datetime


class Alert(NamedTuple):
    """One (guard, rollout): the row `GET /v1/alerts` lists, folded from its `alert.changed`
    and `alert.stopped` events (`changed`, `stopped`), and only from them."""

    guard: str
    operation_id: str
    track: Track
    app_id: str
    platform: Platform
    state: AlertState
    value: float  # the reading at the last change
    threshold: float
    fired_at: datetime
    resolved_at: datetime | None
    new_codes: frozenset[str]  # new_error_code: the codes it fired for...
    known_codes: frozenset[str]  # ...and those not counted as new
    changes: int  # how many times it fired or resolved: a change's id is (guard, rollout, n)
    stop: Stop | None = None  # StopBatchTask's outcome for this firing, if the guard asks


class AlertTransition(NamedTuple):
    """One change of an alert, at its event's position: an alert's history, and the live
    feed's `alert` events."""

    position: int
    guard: str
    operation_id: str
    track: Track
    app_id: str
    number: int
    state: AlertState
    value: float
    threshold: float
    at: datetime
    received_at: datetime


def transition(position: int, received_at: datetime, event: AlertChanged) -> AlertTransition:
    return AlertTransition(
        position,
        event.guard,
        event.operation_id,
        event.track,
        event.app_id,
        event.number,
        event.state,
        event.value,
        event.threshold,
        event.at,
        received_at,
    )


AlertKey = tuple[str, str, Track]  # (guard, operation_id, track)


def key_of(event: AlertEvent) -> AlertKey:
    return (event.guard, event.operation_id, event.track)


def decide(
    alert: Alert | None, guard: str, rollout: Rollout, when: Condition, facts: Facts
) -> AlertChanged | None:
    """The alert's change after a new reading: it fired or resolved (or, for
    `new_error_code`, fired again for another new code); None when nothing moved. A rollout
    first read with its condition false has no alert. The value of a reading that moves no
    state is not recorded: what the log does not say, replay could not rebuild."""
    known = alert.known_codes if alert is not None and isinstance(when, NewErrorCode) else None
    reading = read(when, facts, known or frozenset())
    was_firing = alert is not None and alert.state == "firing"
    grew = (
        alert is not None
        and was_firing
        and reading.firing
        and bool(facts.error_codes - (known or frozenset()) - alert.new_codes)
    )
    if reading.firing == was_firing and not grew:
        return None
    number = 1 if alert is None else alert.changes + 1
    new = known_after = frozenset[str]()
    if isinstance(when, NewErrorCode):
        baseline = known or frozenset()
        if reading.firing:  # every new code, those it fired for before included
            seen = alert.new_codes if grew and alert is not None else frozenset()
            new, known_after = seen | (facts.error_codes - baseline), baseline
        else:  # what it fired for is known from now on: only a code beyond it is new again
            new, known_after = frozenset(), baseline | (alert.new_codes if alert else frozenset())
    return AlertChanged(
        id=f"{guard}:{rollout.operation_id}:{rollout.track}:{number}",
        guard=guard,
        operation_id=rollout.operation_id,
        track=rollout.track,
        app_id=rollout.app_id,
        platform=rollout.platform,
        state="firing" if reading.firing else "resolved",
        value=float(reading.value),
        threshold=float(reading.threshold),
        at=facts.at,
        fired_at=facts.at if alert is None or not was_firing else alert.fired_at,
        number=number,
        new_codes=tuple(sorted(new)),
        known_codes=tuple(sorted(known_after)),
    )


def ended(alert: Alert, reason: EndReason, at: datetime) -> AlertChanged:
    """A firing alert resolved because its guard was replaced or deleted, not because its
    rollout recovered: what it fired for is known from now on."""
    number = alert.changes + 1
    return AlertChanged(
        id=f"{alert.guard}:{alert.operation_id}:{alert.track}:{number}",
        guard=alert.guard,
        operation_id=alert.operation_id,
        track=alert.track,
        app_id=alert.app_id,
        platform=alert.platform,
        state="resolved",
        value=alert.value,
        threshold=alert.threshold,
        at=at,
        fired_at=alert.fired_at,
        number=number,
        known_codes=tuple(sorted(alert.known_codes | alert.new_codes)),
        reason=reason,
    )


def confirmed(when: Condition, progress: TaskProgress) -> Reading | None:
    """The condition read on IoTDA's own counters of the task (`task_progress`), before a
    stop: None for a condition they cannot show (a guard asking a stop has none such)."""
    if not isinstance(when, CONFIRMABLE):
        return None
    facts = Facts(progress.success, progress.fail, 0, frozenset(), _EPOCH, _EPOCH)
    return read(when, facts)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def changed(alert: Alert | None, event: AlertChanged) -> Alert:
    """The alert after its change: all of it is in the event. A firing starts afresh; a
    resolution keeps what its firing's stop came to."""
    return Alert(
        guard=event.guard,
        operation_id=event.operation_id,
        track=event.track,
        app_id=event.app_id,
        platform=event.platform,
        state=event.state,
        value=event.value,
        threshold=event.threshold,
        fired_at=event.fired_at,
        resolved_at=None if event.state == "firing" else event.at,
        new_codes=frozenset(event.new_codes),
        known_codes=frozenset(event.known_codes),
        changes=event.number,
        stop=None if event.state == "firing" or alert is None else alert.stop,
    )


def stopped(alert: Alert | None, event: AlertStopped) -> Alert | None:
    """The alert with its stop's outcome; None (nothing to change) if the outcome answers a
    firing the alert has since left behind, or an alert the log does not have."""
    if alert is None or alert.changes not in (event.number, event.number + 1):
        return None
    return alert._replace(stop=Stop(event.outcome, event.detail, event.at))
