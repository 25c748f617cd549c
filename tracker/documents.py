"""The JSON documents the API answers with (and the CLI prints with --json): one shape each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tracker.domain.device import TRACKS, DeviceTransition, TrackState, UpgradeResult
from tracker.domain.task import Task, TaskTransition
from tracker.store.queries import Device, OperationSummary


def device(found: Device) -> dict[str, Any]:
    tracks = list(found.tracks.values())
    latest = max(tracks, key=lambda t: t.last_position)
    return {
        "device_id": found.device_id,
        "app_id": latest.app_id,
        **{name: _track(found.tracks.get(name)) for name in TRACKS},
        "last_position": latest.last_position,
        "updated_at": latest.updated_at,
    }


def _track(track: TrackState | None) -> dict[str, Any] | None:
    if track is None:
        return None
    return {
        "state": track.state,
        "state_since": track.state_since,
        "operation_id": track.operation_id,
        "sub_operation_id": track.sub_operation_id,
        "version": track.version,
        "last_result": _result(track.last_result),
        "last_position": track.last_position,
        "updated_at": track.updated_at,
    }


def _result(result: UpgradeResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "result": result.result,
        "source_version": result.source_version,
        "target_version": result.target_version,
        "current_version": result.current_version,
        "error_code": result.error_code,
        "result_desc": result.result_desc,
        "description": result.description,
        "upgrade_time": result.upgrade_time,
        "anomaly": result.anomaly,
        "operation_id": result.operation_id,
        "sub_operation_id": result.sub_operation_id,
        "position": result.position,
        "received_at": result.received_at,
    }


def device_transition(t: DeviceTransition) -> dict[str, Any]:
    return {
        "position": t.position,
        "track": t.track,
        "from_state": t.from_state,
        "to_state": t.to_state,
        "valid": t.valid,
        "operation_id": t.operation_id,
        "sub_operation_id": t.sub_operation_id,
        "received_at": t.received_at,
    }


def operation(summary: OperationSummary) -> dict[str, Any]:
    return {
        "operation_id": summary.operation_id,
        "track": summary.track,
        "devices": summary.devices,
        "states": summary.states,
        "results": summary.results,
    }


def task(t: Task) -> dict[str, Any]:
    return {
        "task_id": t.task_id,
        "app_id": t.app_id,
        "task_type": t.task_type,
        "status": t.status,
        "status_desc": t.status_desc,
        "event_time": _utc(t.event_time),
        "request_id": t.request_id,
        "last_position": t.last_position,
        "updated_at": t.updated_at,
    }


def task_transition(t: TaskTransition) -> dict[str, Any]:
    return {
        "position": t.position,
        "from_status": t.from_status,
        "to_status": t.to_status,
        "valid": t.valid,
        "applied": t.applied,
        "event_time": _utc(t.event_time),
        "request_id": t.request_id,
        "received_at": t.received_at,
    }


def _utc(moment: datetime) -> str:
    """The platform's event time, as it writes times: UTC with milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
