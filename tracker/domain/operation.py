"""Which devices took part in an upgrade operation, with their state and result under it.

Kept per (operation, device, track), so an operation's summary stays true after its devices
move on to the next operation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NamedTuple

from tracker.domain.device import STEP_STATES, track_of
from tracker.domain.notifications import (
    DeviceNotification,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    Track,
    UpgradeState,
)
from tracker.domain.recorded import Recorded


class OperationDevice(NamedTuple):
    operation_id: str
    device_id: str
    track: Track
    state: UpgradeState | None
    result: Literal["SUCCESS", "FAIL"] | None
    last_position: int
    updated_at: datetime


def evolve_membership(
    member: OperationDevice | None, event: Recorded[DeviceNotification]
) -> OperationDevice | None:
    """Fold one device event into its operation membership; None when nothing changes."""
    n = event.notification
    state = member.state if member else None
    result = member.result if member else None
    if isinstance(n, SwUpgradeStateChanged):
        state = n.swUpgradeState
    elif isinstance(n, FwUpgradeStateChanged):
        state = STEP_STATES[n.step]
    else:
        result = n.swUpgradeResult if isinstance(n, SwUpgradeResult) else n.status
    if member is not None and state == member.state and result == member.result:
        return None
    track = member.track if member else track_of(n)
    return OperationDevice(
        n.operationId, n.deviceId, track, state, result, event.position, event.received_at
    )
