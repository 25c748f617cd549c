"""Rollup counters moved by deltas, batch after batch, always equal a recount of the members."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.builders import T0, IdArgs, fw, fw_result, sw, sw_result
from tracker.domain.notifications import (
    UPGRADE_STATES,
    DeviceNotification,
    Notification,
    Result,
    Track,
)
from tracker.domain.operation import (
    ErrorCount,
    OperationCounts,
    OperationDevice,
    OperationKey,
    VersionCount,
    tally,
)
from tracker.domain.projection import Projection, keys_of
from tracker.domain.recorded import Recorded

ErrorKey = tuple[str, Track, str, str]  # operation, track, error code, description ("": null)
VersionKey = tuple[str, Track, str]  # operation, track, target version
# What a test plan's step says: kind, device, operation, value, application, receive second.
Step = tuple[str, int, int, int, str, int]


def recount(
    members: list[OperationDevice],
) -> tuple[dict[OperationKey, OperationCounts], dict[ErrorKey, int], dict[VersionKey, int]]:
    """What replay's SQL recounts compute (tracker/store/rows.py, `recount`), in Python."""
    counts: dict[OperationKey, OperationCounts] = {}
    errors: Counter[ErrorKey] = Counter()
    versions: Counter[VersionKey] = Counter()
    for m in members:
        key: OperationKey = (m.operation_id, m.track)
        row = counts.get(key) or OperationCounts(
            *key, m.app_id, m.app_id, 0, 0, 0, 0, 0, 0, 0, m.first_seen_at, m.updated_at
        )
        bump = {"devices": 1}
        if m.state is not None:
            bump[m.state] = 1
        if m.result is not None:
            bump[m.result.lower()] = 1
        counts[key] = row._replace(
            app_id=min(row.app_id, m.app_id),
            max_app_id=max(row.max_app_id, m.app_id),
            first_seen_at=min(row.first_seen_at, m.first_seen_at),
            last_activity_at=max(row.last_activity_at, m.updated_at),
            **{k: getattr(row, k) + v for k, v in bump.items()},
        )
        if m.result == "FAIL":
            errors[m.operation_id, m.track, m.error_code or "", m.result_desc or ""] += 1
        if m.target_version is not None:
            versions[m.operation_id, m.track, m.target_version] += 1
    return counts, dict(errors), dict(versions)


class Store:
    """The live path's tables, in memory: members, and counters merged as the upserts do."""

    def __init__(self) -> None:
        self.projection = Projection()  # rows as committed (tracks, devices, members)
        self.counts: dict[OperationKey, OperationCounts] = {}
        self.errors: Counter[ErrorKey] = Counter()
        self.versions: Counter[VersionKey] = Counter()

    def commit(self, batch: Sequence[Recorded[Notification]]) -> None:
        keys = keys_of([e.notification for e in batch])
        loaded = Projection(
            devices={k: v for k, v in self.projection.devices.items() if k in keys.devices},
            tracks={k: v for k, v in self.projection.tracks.items() if k[0] in keys.devices},
            members={k: v for k, v in self.projection.members.items() if k in keys.members},
        )
        for key, subs in self.projection.subs.items():
            if key[0] in keys.devices:
                for sub in subs.values():
                    loaded.add_sub(sub)
        for event in batch:
            loaded.apply(event)
        changes = loaded.take_changes()
        for m in changes.members:
            self.projection.members[m.operation_id, m.track, m.device_id] = m
        for sub in changes.subs:
            self.projection.add_sub(sub)
        self.projection.tracks.update({(t.device_id, t.track): t for t in changes.tracks})
        self.projection.devices.update({d.device_id: d for d in changes.devices})
        for key, delta in changes.rollup.counts.items():
            self.counts[key] = _merged(self.counts.get(key), delta)
        for e in changes.rollup.error_deltas():
            self.errors[e.operation_id, e.track, e.error_code or "", e.result_desc or ""] += (
                e.devices
            )
        for v in changes.rollup.version_deltas():
            self.versions[v.operation_id, v.track, v.target_version] += v.devices
        assert all(n >= 0 for n in [*self.errors.values(), *self.versions.values()])
        self.errors = Counter({k: n for k, n in self.errors.items() if n})  # DROP_EMPTY
        self.versions = Counter({k: n for k, n in self.versions.items() if n})


def _merged(stored: OperationCounts | None, delta: OperationCounts) -> OperationCounts:
    if stored is None:
        return delta
    added = ("devices", *UPGRADE_STATES, "success", "fail")
    return stored._replace(
        app_id=min(stored.app_id, delta.app_id),
        max_app_id=max(stored.max_app_id, delta.max_app_id),
        first_seen_at=min(stored.first_seen_at, delta.first_seen_at),
        last_activity_at=max(stored.last_activity_at, delta.last_activity_at),
        **{k: getattr(stored, k) + getattr(delta, k) for k in added},
    )


def notification(kind: str, device: int, op: int, value: int, app: str) -> DeviceNotification:
    ids: IdArgs = {"device": f"d{device}", "op": f"op{op}", "app": f"app-{app}"}
    state = UPGRADE_STATES[value % 4]
    if kind == "sw":
        return sw(state, **ids)
    if kind == "fw":
        return fw(state, **ids)
    result: Result = "SUCCESS" if value % 3 == 0 else "FAIL"
    versions = {"cur": f"v{value % 2}", "target": f"v{value % 3}"}
    if kind == "swr":
        return sw_result(result, error=f"E{value % 2}", desc=f"why {value % 3}", **versions, **ids)
    return fw_result(result, desc=f"why {value % 2}", **versions, **ids)


events: st.SearchStrategy[list[Step]] = st.lists(
    st.tuples(
        st.sampled_from(["sw", "fw", "swr", "fwr"]),
        st.integers(0, 3),  # device
        st.integers(0, 2),  # operation
        st.integers(0, 11),  # state / result / versions
        st.sampled_from(["a", "B", "é", "b"]),  # application: min/max by code point
        st.integers(-5, 60),  # receive time: not always increasing
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(plan=events, cuts=st.lists(st.integers(1, 8), min_size=1, max_size=20))
def test_counters_moved_by_deltas_equal_a_recount(plan: list[Step], cuts: list[int]) -> None:
    recorded = [
        Recorded(
            position, T0 + timedelta(seconds=second), notification(kind, device, op, value, app)
        )
        for position, (kind, device, op, value, app, second) in enumerate(plan, 1)
    ]
    store, start = Store(), 0
    for size in cuts * (len(recorded) // sum(cuts) + 1):
        if start >= len(recorded):
            break
        store.commit(recorded[start : start + size])
        start += size
    counts, errors, versions = recount(list(store.projection.members.values()))
    assert store.counts == counts
    assert dict(store.errors) == errors
    assert dict(store.versions) == versions


def test_a_member_that_moves_from_fail_to_success_leaves_its_error_group() -> None:
    first = tally([(None, member := _member(result="FAIL", error_code="E1"))])
    assert first.error_deltas() == [ErrorCount("op", "software", "E1", "why", 1)]
    assert first.version_deltas() == [VersionCount("op", "software", "2.0", 1)]
    moved = tally([(member, member._replace(result="SUCCESS", error_code="0"))])
    assert moved.error_deltas() == [ErrorCount("op", "software", "E1", "why", -1)]
    assert moved.version_deltas() == []  # same target: no change
    counts = moved.counts["op", "software"]
    assert (counts.devices, counts.success, counts.fail) == (0, 1, -1)


def _member(**fields: Any) -> OperationDevice:
    base = OperationDevice(
        "op", "software", "d", "app", "idle", None, None, "why", "2.0", "2.0", T0, 1, T0
    )
    return base._replace(**fields)


def test_errors_are_grouped_by_the_first_256_characters_of_their_description() -> None:
    shared = "x" * 256
    counted = tally(
        [
            (
                None,
                _member(device_id="d1", result="FAIL", error_code="E", result_desc=shared + "a"),
            ),
            (
                None,
                _member(device_id="d2", result="FAIL", error_code="E", result_desc=shared + "b"),
            ),
        ]
    )
    assert counted.error_deltas() == [ErrorCount("op", "software", "E", shared, 2)]


def test_error_groups_come_in_key_order_with_none_first() -> None:
    # Appends add their deltas to shared rollup rows in one order, so none waits on another in
    # a cycle (store/projections.py).
    counted = tally(
        [
            (None, _member(device_id="d1", result="FAIL", error_code="E2", result_desc=None)),
            (None, _member(device_id="d2", result="FAIL", error_code="E1", result_desc="b")),
            (None, _member(device_id="d3", result="FAIL", error_code=None, result_desc="a")),
        ]
    )
    assert [(e.error_code, e.result_desc) for e in counted.error_deltas()] == [
        (None, "a"),
        ("E1", "b"),
        ("E2", None),
    ]
