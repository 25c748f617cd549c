"""One truth whatever the arrival order (docs/architecture.md): every order of the same
deliveries gives the same device tracks, rollout members and rollout counters, and those are
what the deliveries say (the oracle of tests/support/histories.py, written from the histories,
not from the fold). Receive times, positions and the audit trail's order are arrival facts and
are left out of the comparison."""

from __future__ import annotations

import random
from collections import Counter
from itertools import permutations
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.convergence import track_view
from tests.support.histories import (
    History,
    MemberView,
    Outcome,
    Run,
    TrackView,
    arrivals,
    draw_history,
    expected_members,
    expected_tracks,
)
from tracker.domain.notifications import DeviceNotification, Track
from tracker.domain.operation import OperationCounts, OperationDevice
from tracker.domain.projection import Projection

SUCCESS = Outcome("SUCCESS", "1.0", "2.0", "2.0", "0", "upgrade succeeded")
UPGRADE = ("downloading", "downloaded", "updating", "idle", SUCCESS)


class Truth(NamedTuple):
    """What one arrival order left, without its arrival facts."""

    tracks: dict[tuple[str, Track], TrackView]
    members: dict[tuple[str, Track, str], tuple[str, MemberView]]  # (app, view)
    counts: dict[tuple[str, Track], tuple[int, ...]]  # devices, by state, by result
    errors: dict[tuple[str, Track, str | None, str | None], int]
    versions: dict[tuple[str, Track, str], int]
    apps: dict[str, str]  # the device's application


def member_view(m: OperationDevice) -> tuple[str, MemberView]:
    said = MemberView(
        m.state, m.result, m.error_code, m.result_desc, m.target_version, m.current_version
    )
    return m.app_id, said


def fold(deliveries: list[DeviceNotification], order: list[int]) -> Truth:
    """The live path, one delivery a batch: rows as committed, counters moved by deltas."""
    projection = Projection()
    counts: dict[tuple[str, Track], Counter[str]] = {}
    errors: Counter[tuple[str, Track, str | None, str | None]] = Counter()
    versions: Counter[tuple[str, Track, str]] = Counter()
    for event in arrivals(deliveries, order):
        projection.apply(event)
        rollup = projection.take_changes().rollup
        for key, delta in rollup.counts.items():
            counts.setdefault(key, Counter()).update(_counters(delta))
        errors.update({e[:4]: e.devices for e in rollup.error_deltas()})
        versions.update({v[:3]: v.devices for v in rollup.version_deltas()})
    return Truth(
        tracks={key: track_view(t) for key, t in projection.tracks.items()},
        members={key: member_view(m) for key, m in projection.members.items()},
        counts={k: tuple(c[n] for n in COUNTED) for k, c in counts.items()},
        errors={k: n for k, n in errors.items() if n},
        versions={k: n for k, n in versions.items() if n},
        apps={d.device_id: d.app_id for d in projection.devices.values()},
    )


COUNTED = ("devices", "idle", "downloading", "downloaded", "updating", "success", "fail")


def _counters(delta: OperationCounts) -> dict[str, int]:
    return {name: getattr(delta, name) for name in COUNTED}


def recount(truth: Truth) -> tuple[dict[tuple[str, Track], tuple[int, ...]], Counter[object]]:
    """The counters and groups the members add up to (what replay recounts)."""
    counts: dict[tuple[str, Track], Counter[str]] = {}
    groups: Counter[object] = Counter()
    for (operation, track, _), (_, m) in truth.members.items():
        c = counts.setdefault((operation, track), Counter(devices=0))
        c["devices"] += 1
        c.update([m.state] if m.state else [])
        c.update([m.result.lower()] if m.result else [])
        if m.result == "FAIL":
            groups["error", operation, track, m.error_code, m.result_desc] += 1
        if m.target_version is not None:
            groups["version", operation, track, m.target_version] += 1
    return {k: tuple(c[n] for n in COUNTED) for k, c in counts.items()}, groups


def check(history: History, truth: Truth) -> None:
    """`truth` is what the deliveries say: tracks and members as the oracle allows, counters
    the members' own, and the device in the application of one of its tracks."""
    for (_, track), shown in truth.tracks.items():
        assert shown in expected_tracks(history, track)
    expected = expected_members(history)
    assert set(truth.members) == set(expected)
    for key, (app, member) in truth.members.items():
        assert member in expected[key]
        assert app == next(r.app for r in history.runs if (r.op, r.track, r.device) == key)
    counts, groups = recount(truth)
    assert truth.counts == counts
    found = Counter[object]({("error", *k): n for k, n in truth.errors.items()})
    found.update({("version", *k): n for k, n in truth.versions.items()})
    assert found == groups
    for device, app in truth.apps.items():
        assert app == max(t.app_id for (d, _), t in truth.tracks.items() if d == device)


def every_order(history: History) -> Truth:
    """Fold every order of the history's deliveries; they must all give one truth."""
    deliveries = history.deliveries()
    orders = permutations(range(len(deliveries)))
    truth = fold(deliveries, list(next(orders)))
    check(history, truth)
    for order in orders:
        assert fold(deliveries, list(order)) == truth, order
    return truth


def run(*steps: object, op: str = "op-1", sub: str = "s-1", track: Track = "software") -> Run:
    return Run("d-1", track, op, sub, "app-1", steps)  # type: ignore[arg-type]


@pytest.mark.parametrize("track", ["software", "firmware"])
def test_every_order_of_one_finished_upgrade_ends_as_it_did(track: Track) -> None:
    truth = every_order(History((run(*UPGRADE, track=track),)))  # 120 orders
    shown = truth.tracks["d-1", track]
    assert (shown.state, shown.settled, shown.version) == ("idle", True, "2.0")
    assert shown.last_result is not None
    assert shown.last_result[2] == "SUCCESS"
    assert truth.members["op-1", track, "d-1"][1].state == "idle"
    assert truth.counts["op-1", track] == (1, 1, 0, 0, 0, 1, 0)


def test_every_order_of_a_rollout_after_another_keeps_the_device_in_the_later_one() -> None:
    # op-1 finished; op-2 is under way: 5,040 orders.
    history = History(
        (
            run(*UPGRADE, op="op-9"),  # ids say nothing of the order
            run("downloading", "downloaded", op="op-1"),
        )
    )
    truth = every_order(history)
    shown = truth.tracks["d-1", "software"]
    assert (shown.operation_id, shown.state, shown.settled, shown.version) == (
        "op-1",
        "downloaded",
        False,  # so it counts as stuck if it stays there: op-9's SUCCESS does not hide it
        "2.0",
    )
    assert truth.members["op-9", "software", "d-1"][1].state == "idle"  # its rollout: done


def test_every_order_of_a_retried_sub_operation_ends_with_the_retry() -> None:
    # The first attempt failed its download; the platform ran a second sub-task: 5,040 orders.
    failed = Outcome("FAIL", "1.0", "2.0", "1.0", "E12", "download failed")
    history = History(
        (
            run("downloading", failed, op="op-1", sub="s-9"),
            run(*UPGRADE, op="op-1", sub="s-1"),
        )
    )
    truth = every_order(history)
    shown = truth.tracks["d-1", "software"]
    assert (shown.sub_operation_id, shown.state, shown.version) == ("s-1", "idle", "2.0")
    assert truth.members["op-1", "software", "d-1"][1].result == "SUCCESS"
    assert truth.errors == {}  # the member's last result is the SUCCESS


@settings(max_examples=300, deadline=None)
@given(rng=st.randoms(use_true_random=False), data=st.data())
def test_any_history_in_any_order_gives_what_its_deliveries_say(
    rng: random.Random, data: st.DataObject
) -> None:
    history = draw_history(rng, tracks=("software", "firmware"), operations=(1, 3), max_subs=2)
    deliveries = history.deliveries()
    as_run = fold(deliveries, list(range(len(deliveries))))
    check(history, as_run)
    for _ in range(3):
        order = data.draw(st.permutations(range(len(deliveries))))
        assert fold(deliveries, order) == as_run
