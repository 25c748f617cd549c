"""The fleet the scale benchmark loads: apps, upgrade operations, batch tasks, and which device
takes part in which operation.

Every device takes part in exactly one operation (so all N devices report): one big software
rollout over ~70% of the fleet, and twelve smaller firmware and software rollouts of 0.03% to
8% of it (300 to 80,000 devices at 1M), across four apps. One batch task per 1,000 devices.
All of it is deterministic for (devices, seed); times are offsets from `now`, spread over the
last nine hours, the big rollout ending three hours before `now`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

Track = Literal["software", "firmware"]
HOUR = 3600 * 1_000_000  # µs
APPS = 4
DEVICES_PER_TASK = 1000
TASKS_END_HOURS = 2  # the last task starts then: its events take up to 1.5 h
BIG_SHARE = 0.70
BIG_START_HOURS, BIG_SPREAD_HOURS = 9.0, 6.0  # starts 9 h before now, devices start over 6 h

# (share of the fleet, track, app, starts this many hours before now, spread over hours)
SMALL_OPERATIONS: tuple[tuple[float, Track, int, float, float], ...] = (
    (0.08, "firmware", 1, 8.5, 3.0),
    (0.06, "software", 1, 6.0, 2.5),
    (0.05, "firmware", 0, 7.0, 4.0),
    (0.04, "firmware", 2, 5.0, 2.0),
    (0.03, "software", 2, 4.0, 2.0),
    (0.02, "firmware", 3, 3.0, 1.5),
    (0.01, "software", 3, 2.5, 1.0),
    (0.005, "firmware", 0, 2.0, 1.0),
    (0.002, "software", 1, 1.5, 0.75),
    (0.001, "firmware", 2, 1.2, 0.5),
    (0.0005, "software", 3, 1.0, 0.5),
    (0.0003, "firmware", 0, 0.75, 0.25),
)
EVENTS_PER_DEVICE = 5.2  # about what the sessions below average (for progress lines only)


@dataclass(frozen=True, slots=True)
class Operation:
    number: int
    operation_id: str
    track: Track
    app_id: str
    members: list[int]  # device numbers, in the order the rollout reaches them
    start_us: int  # the first device starts here (µs since the epoch)
    spread_us: int  # the last one starts this much later
    source_version: str
    target_version: str

    def sub_operation_id(self, rank: int) -> str:
        return f"{self.operation_id[:16]}{rank:08x}"


@dataclass(frozen=True, slots=True)
class Task:
    number: int
    task_id: str
    app_id: str
    task_type: Literal["softwareUpgrade", "firmwareUpgrade"]
    start_us: int  # its first event


@dataclass(frozen=True, slots=True)
class Fleet:
    devices: int
    seed: int
    now_us: int
    apps: list[str]
    operations: list[Operation]  # the big rollout first
    tasks: list[Task]

    def device_id(self, number: int) -> str:
        """A stable id that sorts unlike the numbers: 8 hex of a hash, then the number in hex."""
        mixed = (number * 0x9E3779B1 + self.seed * 0x85EBCA6B) & 0xFFFFFFFF
        return f"d-{mixed:08x}{number:06x}"

    @property
    def big(self) -> Operation:
        return self.operations[0]

    @property
    def smallest(self) -> Operation:
        return min(self.operations, key=lambda op: (len(op.members), op.number))

    @property
    def busiest_app(self) -> str:
        return self.big.app_id

    def sample_devices(self, count: int) -> list[str]:
        """Devices of the big rollout, spread evenly over it."""
        members = self.big.members
        step = max(1, len(members) // count)
        return [self.device_id(n) for n in members[::step][:count]]

    def sample_tasks(self, count: int) -> list[str]:
        step = max(1, len(self.tasks) // count)
        return [t.task_id for t in self.tasks[::step][:count]]

    @property
    def expected_events(self) -> int:
        return int(self.devices * EVENTS_PER_DEVICE) + 5 * len(self.tasks)


def plan(devices: int, seed: int, now_us: int) -> Fleet:
    rng = random.Random(seed)  # noqa: S311 - seeded: the same fleet for the same seed
    apps = [f"app-{rng.getrandbits(32):08x}" for _ in range(APPS)]
    order = list(range(devices))
    rng.shuffle(order)
    sizes = [max(1, round(share * devices)) for share, *_ in SMALL_OPERATIONS]
    if sum(sizes) >= devices:
        raise ValueError(f"{devices:,} devices are too few for the fleet's operations")
    big: tuple[float, Track, int, float, float] = (
        BIG_SHARE,
        "software",
        0,
        BIG_START_HOURS,
        BIG_SPREAD_HOURS,
    )
    counts = [devices - sum(sizes), *sizes]  # the big one takes the rest, ~70%
    operations: list[Operation] = []
    taken = 0
    shapes = zip((big, *SMALL_OPERATIONS), counts, strict=True)
    for number, ((_, track, app, start_h, spread_h), size) in enumerate(shapes):
        major = 3 + number % 4
        operations.append(
            Operation(
                number=number,
                operation_id=f"{rng.getrandbits(96):024x}",
                track=track,
                app_id=apps[app],
                members=order[taken : taken + size],
                start_us=now_us - int(start_h * HOUR),
                spread_us=int(spread_h * HOUR),
                source_version=f"{major}.{number}.0",
                target_version=f"{major}.{number + 1}.0",
            )
        )
        taken += size
    first, last = now_us - int(BIG_START_HOURS * HOUR), now_us - TASKS_END_HOURS * HOUR
    tasks = [
        Task(
            number=n,
            task_id=_task_id(rng),
            app_id=apps[rng.randrange(APPS)],
            task_type="softwareUpgrade" if rng.random() < 0.5 else "firmwareUpgrade",
            start_us=rng.randrange(first, last),
        )
        for n in range(max(1, devices // DEVICES_PER_TASK))
    ]
    tasks.sort(key=lambda t: (t.start_us, t.number))
    return Fleet(devices, seed, now_us, apps, operations, tasks)


def _task_id(rng: random.Random) -> str:
    """Shaped like IoTDA's, e.g. 1a7ffc5c-d89c-44dd-8265."""
    digits = f"{rng.getrandbits(80):020x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}"
