"""Reads: every read endpoint and filter, one client, one request at a time, p50 and p99.

Against one `tracker serve` (tokens set), through one keep-alive connection (bench/scale/
client.py): `warmup` requests, then `count` timed ones. Documents of one device or task rotate
through a sample of them; a list asks for its first page of 100 again and again, or, for a
"deep page", the page from the middle of the list (the cursor found by walking it in pages of
1,000 first). An endpoint or parameter that the server's OpenAPI document does not list shows
as "n/a (not served)", so the same benchmark runs on versions with fewer endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from bench.scale.client import Client, p50_p99_ms, with_cursor
from bench.scale.endpoints import Endpoint, Kind, Picks, endpoints, served

NOT_SERVED = "n/a (not served)"
AT_SAMPLE = 20  # devices whose history `?at=` reads, each at a position from its transitions


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    kind: Kind
    status: str  # "ok", NOT_SERVED, "failed (HTTP 500)", "n/a (one page only)"
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    note: str = ""  # e.g. how deep a deep page was


def measure(  # noqa: PLR0913, PLR0917 - the knobs of the run
    client: Client,
    p: Picks,
    warmup: int,
    count: int,
    depth: int,
    said: Callable[[Timing], None] = lambda _: None,
) -> list[Timing]:
    """Every endpoint in turn; `depth`: how many items a deep page is behind."""
    status, body = client.get("/v1/openapi.json")
    openapi = _document(body) if status == 200 else None
    out = []
    for endpoint in endpoints(p):
        out.append(_one(client, endpoint, p, (warmup, count, depth), openapi))
        said(out[-1])
    return out


def _one(
    client: Client,
    endpoint: Endpoint,
    p: Picks,
    knobs: tuple[int, int, int],
    openapi: dict[str, Any] | None,
) -> Timing:
    warmup, count, depth = knobs
    if not served(openapi, endpoint):
        return Timing(endpoint.label, endpoint.kind, NOT_SERVED)
    paths, note = list(endpoint.paths), ""
    if endpoint.how == "at":
        paths = _at_paths(client, p.devices[:AT_SAMPLE])
        if not paths:
            return Timing(endpoint.label, endpoint.kind, "failed (no device history)")
    elif endpoint.how == "deep":
        cursor, behind = client.walk(paths[0], depth)
        if cursor is None:
            return Timing(endpoint.label, endpoint.kind, "n/a (one page only)")
        paths, note = [with_cursor(paths[0], cursor)], f"{behind:,} items in"
    seconds, status = client.timed(paths, warmup, count)
    if status != 200:
        shown = NOT_SERVED if status == 404 and openapi is None else f"failed (HTTP {status})"
        return Timing(endpoint.label, endpoint.kind, shown)
    p50, p99 = p50_p99_ms(seconds)
    return Timing(endpoint.label, endpoint.kind, "ok", p50, p99, len(seconds), note)


def _at_paths(client: Client, devices: list[str]) -> list[str]:
    """`/v1/devices/{id}?at=<position>`: each device at the middle of its own history."""
    paths = []
    for device in devices:
        page = client.json(f"/v1/devices/{quote(device)}/transitions?limit=1000")
        items = page.get("items", []) if isinstance(page, dict) else []
        if items:
            paths.append(f"/v1/devices/{quote(device)}?at={items[len(items) // 2]['position']}")
    return paths


def _document(body: bytes) -> dict[str, Any] | None:
    parsed = orjson.loads(body)
    return parsed if isinstance(parsed, dict) else None
