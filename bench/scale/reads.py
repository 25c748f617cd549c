"""Every read endpoint and filter, one client, one request at a time: p50 and p99.

One keep-alive HTTP/1.1 connection (`http.client`, the leanest client at hand, so a request's
time is mostly the server's), from sending a request to the last byte of its answer: `warmup`
requests, then `count` timed ones. Documents of one device or task rotate through a sample of
them; a list asks for its first page of 100 again and again, or, for a "deep page", the page
from the middle of the list (the cursor found by walking it in pages of 1,000 first). Ids are
picked from the fleet as generated and shown as <placeholders> in the labels, so the rows of
both sizes line up. An endpoint or parameter that the server's OpenAPI document does not list
shows as "n/a (not served)", so the same benchmark runs on versions with fewer endpoints.
"""

from __future__ import annotations

import http.client
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import orjson

from bench.ingest import READ_HEADERS
from bench.load import percentile
from bench.scale.plan import Fleet

Kind = Literal["list", "document", "operation"]
How = Literal["", "deep", "at"]  # as listed; a page from the middle; a device at a position
NOT_SERVED = "n/a (not served)"
AT_SAMPLE = 20  # devices whose history `?at=` reads, each at a position from its transitions
DEVICE, TASK = "/v1/devices/{device_id}", "/v1/tasks/{task_id}"
OPERATION = "/v1/operations/{operation_id}"
MEMBERS = f"{OPERATION}/devices"
# The lists asked for, in the table's order: (path, query with <placeholders>, how).
DEVICE_LISTS: tuple[tuple[str, How], ...] = (
    *(("", ""), ("", "deep"), ("track=firmware", ""), ("state=downloading", "")),
    *(("state=idle", ""), ("state=idle", "deep"), ("result=FAIL", ""), ("app_id=<app>", "")),
    *(("app_id=<app>&state=updating", ""), ("operation_id=<big>&state=downloading", "")),
    *(("operation_id=<big>&result=FAIL", ""), ("stuck_for=3600", "")),
    ("operation_id=<big>&stuck_for=3600", ""),
)
MEMBER_LISTS: tuple[tuple[str, How], ...] = (
    *(("", ""), ("state=idle", ""), ("result=FAIL", ""), ("", "deep"), ("error_code=<code>", "")),
)


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def send(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                self.connection.request(method, path, body, headers=READ_HEADERS | headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError  # unreachable

    def json(self, path: str) -> Any:  # noqa: ANN401 - a JSON document
        status, body = self.send("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return orjson.loads(body)

    def timed(self, paths: list[str], warmup: int, count: int) -> tuple[list[float], int]:
        """`warmup` then `count` requests, each the next of `paths` in turn: (seconds of each
        timed one, the first status other than 200, or 200)."""
        seconds: list[float] = []
        for i in range(warmup + count):
            began = time.perf_counter()
            status, _ = self.send("GET", paths[i % len(paths)])
            if i >= warmup:
                seconds.append(time.perf_counter() - began)
            if status != 200:
                return seconds, status
        return seconds, 200

    def walk(self, path: str, depth: int) -> tuple[str | None, int]:
        """Follow `next_cursor` from `path` (pages of 1,000) until `depth` items are behind:
        (a cursor from there, or the last one if the list ends sooner; items behind it)."""
        behind, cursor = 0, None
        while behind < depth:
            page = self.json(_cursor(path.replace("limit=100", "limit=1000"), cursor))
            if page.get("next_cursor") is None:
                break
            behind, cursor = behind + len(page["items"]), page["next_cursor"]
        return cursor, behind

    def close(self) -> None:
        self.connection.close()


def _cursor(path: str, cursor: str | None) -> str:
    return path if cursor is None else f"{path}&cursor={quote(cursor, safe='')}"


@dataclass(frozen=True, slots=True)
class Picks:
    """What the endpoints ask about, from the fleet as generated."""

    big: str  # the big rollout's operation id
    small: str  # the smallest rollout's
    app: str
    devices: list[str]
    tasks: list[str]
    middle: int  # a log position half way
    code: str = "E101"  # an error code (download timeout)

    @classmethod
    def of(cls, fleet: Fleet, middle: int, sample: int) -> Picks:
        big, small = fleet.big.operation_id, fleet.smallest.operation_id
        return cls(
            big,
            small,
            fleet.busiest_app,
            fleet.sample_devices(sample),
            fleet.sample_tasks(sample),
            middle,
        )


@dataclass(frozen=True, slots=True)
class Endpoint:
    label: str  # as the table shows it: ids as <placeholders>
    template: str  # its path in the OpenAPI document
    params: tuple[str, ...]  # the query parameters it uses (besides limit and cursor)
    kind: Kind
    paths: tuple[str, ...]  # the requests, taken in turn
    how: How = ""


def endpoints(p: Picks) -> list[Endpoint]:
    """Every read, labelled as the table shows it (every list asks for `limit=100`)."""
    devices = [f"/v1/devices/{quote(d)}" for d in p.devices]
    tasks = [f"/v1/tasks/{quote(t)}" for t in p.tasks]
    ids = {"app": p.app, "big": p.big, "code": p.code, "middle": str(p.middle)}

    def listed(template: str, query: str, how: How = "") -> Endpoint:
        label = f"GET {template.replace('{operation_id}', '<big>')}{'?' if query else ''}{query}"
        filled = re.sub(r"<(\w+)>", lambda m: quote(ids[m[1]], safe=""), query)
        path = template.replace("{operation_id}", quote(p.big))
        params = tuple(x.split("=")[0] for x in query.split("&") if x)
        request = f"{path}?{filled + '&' if filled else ''}limit=100"
        return Endpoint(
            label + (", deep page" if how else ""), template, params, "list", (request,), how
        )

    def each(template: str, kind: Kind, paths: list[str], label: str = "") -> Endpoint:
        shown = label or "GET " + re.sub(r"\{\w+\}", "{id}", template)
        return Endpoint(shown, template, (), kind, tuple(paths))

    big, small = (f"/v1/operations/{quote(x)}" for x in (p.big, p.small))
    lists = ("", "status=Success", "task_type=firmwareUpgrade")
    return [
        *(listed("/v1/devices", query, how) for query, how in DEVICE_LISTS),
        each(DEVICE, "document", devices),
        each(f"{DEVICE}/transitions", "list", [f"{d}/transitions" for d in devices]),
        Endpoint("GET /v1/devices/{id}?at=<position>", DEVICE, ("at",), "document", (), "at"),
        each(OPERATION, "operation", [big], "GET /v1/operations/<big> (the rollup)"),
        each(OPERATION, "operation", [small], "GET /v1/operations/<small>"),
        *(listed("/v1/operations", query) for query in ("", "track=firmware", "app_id=<app>")),
        *(listed(MEMBERS, query, how) for query, how in MEMBER_LISTS),
        *(listed("/v1/tasks", query) for query in lists),
        each(TASK, "document", tasks),
        each(f"{TASK}/transitions", "list", [f"{t}/transitions" for t in tasks]),
        listed("/v1/events", "after=<middle>"),
    ]


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
    said: Callable[[Timing], None],
) -> list[Timing]:
    """Every endpoint in turn; `depth`: how many items a deep page is behind."""
    status, body = client.send("GET", "/v1/openapi.json")
    openapi = orjson.loads(body) if status == 200 else None
    out = []
    for endpoint in endpoints(p):
        out.append(_one(client, endpoint, p, (warmup, count, depth), openapi))
        said(out[-1])
    return out


def _one(
    client: Client,
    e: Endpoint,
    p: Picks,
    knobs: tuple[int, int, int],
    openapi: dict[str, Any] | None,
) -> Timing:
    warmup, count, depth = knobs
    if not _served(openapi, e):
        return Timing(e.label, e.kind, NOT_SERVED)
    paths, note = list(e.paths), ""
    if e.how == "at":  # each device at the middle of its own history
        for device in p.devices[:AT_SAMPLE]:
            items = client.json(f"/v1/devices/{quote(device)}/transitions?limit=1000")["items"]
            paths += (
                [f"/v1/devices/{quote(device)}?at={items[len(items) // 2]['position']}"]
                if items
                else []
            )
        if not paths:
            return Timing(e.label, e.kind, "failed (no device history)")
    elif e.how == "deep":
        cursor, behind = client.walk(paths[0], depth)
        if cursor is None:
            return Timing(e.label, e.kind, "n/a (one page only)")
        paths, note = [_cursor(paths[0], cursor)], f"{behind:,} items in"
    seconds, status = client.timed(paths, warmup, count)
    if status != 200:
        shown = NOT_SERVED if status == 404 and openapi is None else f"failed (HTTP {status})"
        return Timing(e.label, e.kind, shown)
    ordered = sorted(seconds)
    p50, p99 = percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000
    return Timing(e.label, e.kind, "ok", p50, p99, len(seconds), note)


def _served(openapi: dict[str, Any] | None, e: Endpoint) -> bool:
    """Whether the server's OpenAPI document lists the path and every parameter used (no
    document: assume so, and let the answers tell)."""
    if openapi is None:
        return True
    shape = re.compile(r"\{[^}]*\}")
    paths = {shape.sub("{}", path): item for path, item in openapi.get("paths", {}).items()}
    operation = paths.get(shape.sub("{}", e.template), {}).get("get")
    if operation is None:
        return False
    return set(e.params) <= {x.get("name") for x in operation.get("parameters", [])}
