"""Which devices took part in an upgrade operation, with their state and result under it.

Kept per (operation, device, track), so an operation's summary stays true after its devices
move on to the next operation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from tracker.domain.device import STEP_STATES, Track, track_of
from tracker.domain.notifications import (
    DeviceNotification,
    FwUpgradeStateChanged,
    SwUpgradeResult,
    SwUpgradeStateChanged,
    UpgradeState,
)
from tracker.domain.recorded import Recorded


@dataclass(frozen=True, slots=True)
class OperationDevice:
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
    base = member or OperationDevice(
        n.operationId, n.deviceId, track_of(n), None, None, event.position, event.received_at
    )
    if isinstance(n, SwUpgradeStateChanged):
        changed = replace(base, state=n.swUpgradeState)
    elif isinstance(n, FwUpgradeStateChanged):
        changed = replace(base, state=STEP_STATES[n.step])
    else:
        changed = replace(
            base, result=n.swUpgradeResult if isinstance(n, SwUpgradeResult) else n.status
        )
    if member is not None and changed == member:
        return None
    return replace(changed, last_position=event.position, updated_at=event.received_at)
