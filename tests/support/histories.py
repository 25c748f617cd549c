"""What the platform did, as a plain model: device histories the platforms can produce, the
deliveries they push for them, and what a reader of those deliveries can know (the oracle).

A history is a device's sub-operations in the order the platform ran them (`Run`s), each a
sequence of steps (a reported state, or a result) as they happened. The platform pushes one
delivery per step and re-pushes some of them (`deliveries`); any order of those may arrive.

The oracle (`expected_tracks`, `expected_members`) is written from the history, not from the
fold's rows: it knows what each sub-operation reported and in which order they really ran.
Device notifications carry no time, so it also knows which other orders the same deliveries
could have come from (`possible_orders`: the version chain of the results, and only the last
sub-operation unfinished); it accepts what any of those gives, and nothing else.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from itertools import permutations
from typing import Literal, NamedTuple

from tests.unit.builders import T0, IdArgs, fw, fw_result, sw, sw_result
from tracker.domain.notifications import (
    DeviceNotification,
    Result,
    SubtaskStatus,
    Track,
    UpgradeState,
)
from tracker.domain.recorded import Recorded

FURTHEST: dict[UpgradeState, int] = {"downloading": 1, "downloaded": 2, "updating": 3, "idle": 4}
Lifecycle = Literal[
    "succeeded",  # downloading, downloaded, updating, idle, SUCCESS
    "succeeded_unreported",  # the same, and the result never pushed
    "download_failed",  # downloading, idle, FAIL
    "update_failed",  # downloading, downloaded, updating, downloaded (LwM2M), FAIL
    "conflict",  # FAIL at once ("Task Conflict": another upgrade runs on the device)
    "retried",  # downloading, idle, FAIL; then the platform's retry policy runs it again
]
SUCCEEDED: frozenset[Lifecycle] = frozenset({"succeeded", "succeeded_unreported", "retried"})
LIFECYCLES: tuple[Lifecycle, ...] = (
    "succeeded",
    "succeeded_unreported",
    "download_failed",
    "update_failed",
    "conflict",
    "retried",
)


class Outcome(NamedTuple):
    """A result as the platform reports it."""

    result: Result
    source: str | None
    target: str | None
    current: str | None
    error_code: str | None
    desc: str


Step = UpgradeState | Outcome


@dataclass(frozen=True)
class Run:
    """One sub-operation as the platform ran it, its steps in the order they happened."""

    device: str
    track: Track
    op: str
    sub: str
    app: str
    steps: tuple[Step, ...]

    @property
    def states(self) -> frozenset[UpgradeState]:
        return frozenset(s for s in self.steps if isinstance(s, str))

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return tuple(s for s in self.steps if isinstance(s, Outcome))

    @property
    def outcome(self) -> Outcome | None:
        """What a reader takes as the sub-operation's result: a SUCCESS ends its retries."""
        outcomes = self.outcomes
        success = [o for o in outcomes if o.result == "SUCCESS"]
        return (success or list(outcomes))[-1] if outcomes else None

    @property
    def finished(self) -> bool:
        return bool(self.outcomes) or "idle" in self.states

    @property
    def furthest(self) -> UpgradeState | None:
        return max(self.states, key=FURTHEST.__getitem__, default=None)

    def deliveries(self) -> list[DeviceNotification]:
        """One delivery per step, as the platform pushes it."""
        ids: IdArgs = {"device": self.device, "op": self.op, "sub": self.sub, "app": self.app}
        out: list[DeviceNotification] = []
        for s in self.steps:
            if not isinstance(s, Outcome):
                out.append((sw if self.track == "software" else fw)(s, **ids))
            elif self.track == "software":
                versions = {"cur": s.current, "target": s.target, "source": s.source}
                out.append(sw_result(s.result, error=s.error_code, desc=s.desc, **versions, **ids))
            else:
                versions = {"cur": s.current, "target": s.target, "source": s.source}
                out.append(fw_result(s.result, desc=s.desc, **versions, **ids))
        return out


@dataclass(frozen=True)
class History:
    """A device's sub-operations on its tracks, in the order the platform ran them (per track)."""

    runs: tuple[Run, ...]
    # Extra copies of deliveries (indexes into `in_order()`): the platform's re-pushes.
    repushed: tuple[int, ...] = ()

    def in_order(self) -> list[DeviceNotification]:
        return [d for run in self.runs for d in run.deliveries()]

    def deliveries(self) -> list[DeviceNotification]:
        """Every delivery the platform makes, re-pushes included (in the order it made them)."""
        first = self.in_order()
        return first + [first[i] for i in self.repushed]

    def on(self, track: Track) -> list[Run]:
        return [r for r in self.runs if r.track == track]


class TrackView(NamedTuple):
    """What a device track says, as far as the deliveries can tell (no arrival facts)."""

    app_id: str
    state: UpgradeState | None
    operation_id: str
    sub_operation_id: str
    settled: bool
    last_result: tuple[object, ...] | None  # (operation, sub, result, source, target, current)
    version: str | None


class MemberView(NamedTuple):
    """A device's part in one operation (no arrival facts)."""

    state: UpgradeState | SubtaskStatus | None
    result: Result | None
    error_code: str | None
    result_desc: str | None
    target_version: str | None
    current_version: str | None


def possible_orders(runs: Sequence[Run]) -> list[tuple[Run, ...]]:
    """Every order the platform could have run `runs` in, as far as their deliveries tell: all
    finished but perhaps the last, and each run whose result gives its versions starting from
    the version the one before it left, unless a run that says no version (it may have changed
    it unseen) came between. The true order is always among them."""
    possible = []
    for order in permutations(runs):
        if any(not r.finished for r in order[:-1]):
            continue
        left: str | None = None  # the version the runs so far are known to have left
        for run in order:
            o = run.outcome
            if o is None or o.source is None or o.current is None:
                left = None
                continue
            if left is not None and o.source != left:
                break
            left = o.current
        else:
            possible.append(order)
    return possible


def _last(order: Sequence[Run], having: Callable[[Run], bool]) -> Run | None:
    return next((r for r in reversed(order) if having(r)), None)


def _has_result(run: Run) -> bool:
    return run.outcome is not None


def _has_version(run: Run) -> bool:
    return run.outcome is not None and run.outcome.current is not None


def _result_key(run: Run | None) -> tuple[object, ...] | None:
    o = None if run is None else run.outcome
    if run is None or o is None:
        return None
    return (run.op, run.sub, o.result, o.source, o.target, o.current)


def expected_tracks(history: History, track: Track) -> set[TrackView]:
    """Every view of the track a reader of the deliveries may give (usually one)."""
    views = set()
    for order in possible_orders(history.on(track)):
        now, last, versioned = order[-1], _last(order, _has_result), _last(order, _has_version)
        views.add(
            TrackView(
                app_id=now.app,
                state=now.furthest,
                operation_id=now.op,
                sub_operation_id=now.sub,
                settled=now.outcome is not None,
                last_result=_result_key(last),
                version=None
                if versioned is None or versioned.outcome is None
                else versioned.outcome.current,
            )
        )
    return views


def expected_members(history: History) -> dict[tuple[str, Track, str], set[MemberView]]:
    """For each (operation, track, device): the views of its membership a reader may give."""
    members: dict[tuple[str, Track, str], set[MemberView]] = {}
    for track in {r.track for r in history.runs}:
        for order in possible_orders(history.on(track)):
            for run in order:
                key = (run.op, run.track, run.device)
                of_operation = [r for r in order if r.op == run.op]
                now, last = of_operation[-1], _last(of_operation, _has_result)
                o = None if last is None else last.outcome
                members.setdefault(key, set()).add(
                    MemberView(
                        state=now.furthest,
                        result=None if o is None else o.result,
                        # firmware results carry no error code (fwUpgradeResultNotify)
                        error_code=None if o is None or track == "firmware" else o.error_code,
                        result_desc=None if o is None else o.desc,
                        target_version=None if o is None else o.target,
                        current_version=None if o is None else o.current,
                    )
                )
    return members


# Drawing histories ----------------------------------------------------------------------------


def lifecycle_steps(
    kind: Lifecycle, version: str, target: str, rng: random.Random
) -> tuple[list[Step], str]:
    """The steps of one sub-operation and the device's version after it."""
    no_versions = rng.random() < 0.1  # descriptive fields the platform may leave out

    def outcome(result: Result, now: str, code: str | None, desc: str) -> Outcome:
        if no_versions:
            return Outcome(result, None, None, None, code, desc)
        return Outcome(result, version, target, now, code, desc)

    success = outcome("SUCCESS", target, "0", "upgrade succeeded")
    match kind:
        case "succeeded":
            return ["downloading", "downloaded", "updating", "idle", success], target
        case "succeeded_unreported":
            return ["downloading", "downloaded", "updating", "idle"], target
        case "download_failed":
            return ["downloading", "idle", outcome("FAIL", version, "E12", "download failed")], (
                version
            )
        case "update_failed":
            failed = outcome("FAIL", version, "E31", "update failed")
            return ["downloading", "downloaded", "updating", "downloaded", failed], version
        case "conflict":
            return [outcome("FAIL", version, "E99", "Task Conflict")], version
        case "retried":
            first = outcome("FAIL", version, "E12", "download failed")
            again: list[Step] = ["downloading", "downloaded", "updating", "idle", success]
            return ["downloading", "idle", first, *again], target


def draw_history(
    rng: random.Random,
    device: str = "d-1",
    tracks: Sequence[Track] = ("software",),
    operations: tuple[int, int] = (1, 2),
    max_subs: int = 2,
    repushes: int = 3,
) -> History:
    """A history the platforms can produce: per track, a number of operations in the range
    `operations` run one after the other (ids drawn at random, so their order says nothing),
    each with one target version and up to `max_subs` sub-operations (one runs again only
    after a failure); the very last may still be in progress (cut short). Versions move only
    on a success."""
    runs: list[Run] = []
    op_names = rng.sample([f"op-{c}" for c in "abcdefghjk"], k=10)
    for track in tracks:
        version, app = "1.0", "app-1"
        ran: list[Run] = []
        for n in range(rng.randint(*operations)):
            op = op_names.pop()
            if n and rng.random() < 0.1:
                app = "app-2"  # the device moved to another application between operations
            # One package per operation; now and then one the device ran before (a rollback).
            target = f"{2 + n}.0" if rng.random() < 0.8 else "2.0"
            for sub in rng.sample(["s-1", "s-2", "s-3", "s-4"], k=rng.randint(1, max_subs)):
                kind = rng.choice(LIFECYCLES)
                steps, version = lifecycle_steps(kind, version, target, rng)
                ran.append(Run(device, track, op, sub, app, tuple(steps)))
                if kind in SUCCEEDED:
                    break  # only a failed sub-task is run again
        if rng.random() < 0.5:  # the last one is still in progress
            last = ran[-1]
            cut = last.steps[: rng.randint(1, len(last.steps))]
            ran[-1] = Run(device, track, last.op, last.sub, last.app, cut)
        runs.extend(ran)
    total = sum(len(r.steps) for r in runs)
    repushed = tuple(rng.randrange(total) for _ in range(rng.randint(0, repushes)))
    return History(tuple(runs), repushed)


def arrivals(
    deliveries: Iterable[DeviceNotification], order: Sequence[int]
) -> list[Recorded[DeviceNotification]]:
    """The deliveries received in `order`, at positions (and seconds after T0) 1, 2, ..."""
    listed = list(deliveries)
    return [
        Recorded(position, T0 + timedelta(seconds=position), listed[i])
        for position, i in enumerate(order, 1)
    ]
