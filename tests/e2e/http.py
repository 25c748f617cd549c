"""A tiny synchronous HTTP client for end-to-end tests (stdlib only; no event loop needed)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Answer:
    started = time.monotonic()
    req = urllib.request.Request(
        url,
        data=body,
        method=method,
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return Answer(response.status, response.read(), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), time.monotonic() - started)


def post(base: str, body: bytes, path: str = "/v1/notifications", **kwargs: Any) -> Answer:
    return request("POST", base + path, body, **kwargs)


def get(base: str, path: str, **kwargs: Any) -> Answer:
    return request("GET", base + path, **kwargs)
