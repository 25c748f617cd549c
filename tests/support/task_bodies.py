"""IoTDA batch task bodies (resource batchtask, event update) for tests."""

from __future__ import annotations

import json


def task_body(task_id: str = "t", status: str = "Waitting", **times: str) -> bytes:
    return json.dumps(
        {
            "resource": "batchtask",
            "event": "update",
            **times,
            "notify_data": {
                "body": {
                    "task_id": task_id,
                    "task_type": "softwareUpgrade",
                    "app_id": "a",
                    "status": status,
                }
            },
        }
    ).encode()
