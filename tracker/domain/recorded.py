"""An event as the log recorded it: what the reducers fold over, live and in replay alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tracker.domain.notifications import Notification

N_co = TypeVar("N_co", bound=Notification, covariant=True)


@dataclass(frozen=True, slots=True)
class Recorded(Generic[N_co]):
    position: int
    received_at: datetime
    notification: N_co
