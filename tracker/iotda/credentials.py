"""Where IoTDA's API is and the keys to it: apart from api.py, so that configuring the
reconciler (settings.py, the server's composition) does not load Huawei's SDK."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    endpoint: str  # http(s)://host[:port]
    project_id: str
    ak: str
    sk: str = field(repr=False)
    instance_id: str | None = None  # sent as the Instance-Id header
    region: str | None = None  # set: an instance's own endpoint, with derived signing
