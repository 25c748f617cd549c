"""How often the fold's truth survives a change of arrival order: a report, not a test.

    python -m tests.support.convergence [--histories N] [--orders K] [--seed S]

1. Every order of one finished software upgrade (downloading, downloaded, updating, idle and its
   SUCCESS: 120 orders): how many end as the upgrade did (track idle with its SUCCESS, the
   rollout's member idle with its SUCCESS).
2. A sample of two-operation histories (tests/support/histories.py), each delivered in K random
   orders: the share of (history, order) pairs whose tracks and rollout members are what the
   oracle says a reader can know, and the share of histories whose K orders all agree.

It drives the live fold (`Projection.apply`) only through what every version of it has, so the
same command measures an older checkout (run it there with this file copied in).
"""

from __future__ import annotations

import argparse
import random
from itertools import permutations

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
from tracker.domain.device import TrackState
from tracker.domain.notifications import DeviceNotification, Track
from tracker.domain.operation import OperationDevice
from tracker.domain.projection import Projection

Folded = tuple[dict[tuple[str, Track], TrackView], dict[tuple[str, Track, str], MemberView]]


def track_view(t: TrackState) -> TrackView:
    last = t.last_result
    settled = last is not None and (last.operation_id, last.sub_operation_id) == (
        t.operation_id,
        t.sub_operation_id,
    )
    key = (
        None
        if last is None
        else (
            last.operation_id,
            last.sub_operation_id,
            last.result,
            last.source_version,
            last.target_version,
            last.current_version,
        )
    )
    return TrackView(t.app_id, t.state, t.operation_id, t.sub_operation_id, settled, key, t.version)


def member_view(m: OperationDevice) -> MemberView:
    return MemberView(
        m.state, m.result, m.error_code, m.result_desc, m.target_version, m.current_version
    )


def fold(deliveries: list[DeviceNotification], order: list[int]) -> Folded:
    projection = Projection(changes=False)
    for event in arrivals(deliveries, order):
        projection.apply(event)
    tracks = {key: track_view(t) for key, t in projection.tracks.items()}
    members = {key: member_view(m) for key, m in projection.members.items()}
    return tracks, members


def agrees(history: History, outcome: Folded) -> bool:
    tracks, members = outcome
    for run in {(r.device, r.track): r for r in history.runs}.values():
        if tracks.get((run.device, run.track)) not in expected_tracks(history, run.track):
            return False
    expected = expected_members(history)
    return set(members) == set(expected) and all(
        members[key] in views for key, views in expected.items()
    )


def one_upgrade() -> tuple[int, int]:
    upgrade = History(
        (
            Run(
                "d-1",
                "software",
                "op-1",
                "sub-1",
                "app-1",
                (
                    "downloading",
                    "downloaded",
                    "updating",
                    "idle",
                    Outcome("SUCCESS", "1.0", "2.0", "2.0", "0", "upgrade succeeded"),
                ),
            ),
        )
    )
    deliveries = upgrade.deliveries()
    orders = [list(p) for p in permutations(range(len(deliveries)))]
    return sum(agrees(upgrade, fold(deliveries, order)) for order in orders), len(orders)


def sample(histories: int, orders: int, seed: int) -> tuple[int, int, int, int]:
    """(pairs agreeing with the oracle, pairs, histories whose orders all give one answer,
    histories whose orders all give the oracle's)."""
    rng = random.Random(seed)
    good_pairs = pairs = same = steady = 0
    for _ in range(histories):
        history = draw_history(rng, operations=(2, 2))
        deliveries = history.deliveries()
        outcomes = []
        for _ in range(orders):
            order = list(range(len(deliveries)))
            rng.shuffle(order)
            outcome = fold(deliveries, order)
            outcomes.append(outcome)
            good_pairs += agrees(history, outcome)
            pairs += 1
        one_answer = all(o == outcomes[0] for o in outcomes)
        same += one_answer
        steady += one_answer and agrees(history, outcomes[0])
    return good_pairs, pairs, same, steady


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args()
    good, total = one_upgrade()
    print(f"one finished upgrade: {good} of {total} arrival orders end as it did")
    n, k = args.histories, args.orders
    good_pairs, pairs, same, steady = sample(n, k, args.seed)
    print(f"two-operation histories, {n} drawn (seed {args.seed}), each in {k} random orders:")
    print(f"  all {k} orders give one answer: {same} of {n} ({100 * same / n:.1f}%)")
    print(f"  ...and it is what the deliveries say: {steady} of {n} ({100 * steady / n:.1f}%)")
    print(
        f"  (history, order) pairs giving what the deliveries say: {good_pairs} of {pairs} "
        f"({100 * good_pairs / pairs:.1f}%)"
    )


if __name__ == "__main__":
    main()
