"""The reconciler's settings (TRACKER_IOTDA_*), checked before `serve` or `reconcile` starts."""

from __future__ import annotations

from urllib.parse import urlsplit

from tracker.amqp.endpoint import Misconfigured
from tracker.config import Settings
from tracker.iotda.credentials import Credentials

REQUIRED = ("iotda_endpoint", "iotda_project_id", "iotda_ak", "iotda_sk")


def credentials(settings: Settings) -> Credentials | None:
    """The API's endpoint and keys; None when the reconciler is not configured (no endpoint and
    no keys). Raises `Misconfigured` (exit 2) for a half-done configuration."""
    given = {name: getattr(settings, name) for name in REQUIRED}
    if not any(given.values()):
        return None
    missing = [f"TRACKER_{name.upper()}" for name, value in given.items() if not value]
    if missing:
        raise Misconfigured(
            f"IoTDA reconciliation needs {', '.join(missing)} as well (or none of "
            f"{', '.join(f'TRACKER_{n.upper()}' for n in REQUIRED)})"
        )
    endpoint = str(settings.iotda_endpoint)
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise Misconfigured(
            f"TRACKER_IOTDA_ENDPOINT must be an https:// URL, such as "
            f"https://iotda.cn-north-4.myhuaweicloud.com, not {endpoint!r}"
        )
    if not settings.iotda_rate > 0:
        raise Misconfigured(f"TRACKER_IOTDA_RATE must be above 0, not {settings.iotda_rate}")
    return Credentials(
        endpoint=endpoint.rstrip("/"),
        project_id=str(settings.iotda_project_id),
        ak=str(settings.iotda_ak),
        sk=str(settings.iotda_sk),
        instance_id=settings.iotda_instance_id,
        region=settings.iotda_region,
    )


def app_ids(settings: Settings) -> tuple[str | None, ...]:
    """Whose tasks ListBatchTasks looks for: the apps named, or (None) every app's."""
    named = tuple(a.strip() for a in (settings.iotda_app_ids or "").split(",") if a.strip())
    return named or (None,)
