"""An event as the log recorded it: what the reducers fold over, live and in replay alike."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, NamedTuple, TypeVar

from tracker.domain.notifications import Notification

N_co = TypeVar("N_co", bound=Notification, covariant=True)


class Recorded(NamedTuple, Generic[N_co]):
    position: int
    received_at: datetime
    # A delivery readmitted from `rejected` keeps the time it was first received, so it may be
    # older than events before it in the log: the reducers never rely on receive times' order.
    notification: N_co
