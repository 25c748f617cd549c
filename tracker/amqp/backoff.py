"""How long to wait before connecting again, and before asking the database again.

Exponential, with "equal jitter" (a wait between half the current ceiling and all of it): after
a broker restart every consumer of every tracker would come back in the same instant, and the
random half spreads them out, while the fixed half keeps a flapping broker from being hammered.
A connection that stayed up for a while starts again from the floor.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

FLOOR = 0.5  # seconds: the first ceiling
CEILING = 30.0  # seconds: never wait longer than this between attempts
STABLE = 60.0  # seconds up after which the next drop counts as a first failure


@dataclass
class Backoff:
    floor: float = FLOOR
    ceiling: float = CEILING
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt, after one more failure."""
        limit = min(self.ceiling, self.floor * 2**self.failures)
        self.failures += 1
        return self.rng.uniform(limit / 2, limit)

    def succeeded(self, lasted: float = STABLE) -> None:
        """An attempt worked (and lasted `lasted` seconds): start again from the floor if it
        stayed up long enough to count as stable, so a flapping broker is not hammered."""
        if lasted >= STABLE:
            self.failures = 0
