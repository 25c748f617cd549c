"""Every read the scale benchmark times: the path, its query, and what it is asked about.

Ids are picked from the fleet as generated (bench/scale/plan.py) and shown as <placeholders> in
the labels, so the rows of both sizes line up. `served` says whether the server's OpenAPI
document lists a path and every parameter a request uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from bench.scale.plan import Fleet

Kind = Literal["list", "document", "operation"]
How = Literal["", "deep", "at"]  # as listed; a page from the middle; a device at a position


@dataclass(frozen=True, slots=True)
class Endpoint:
    label: str  # as the table shows it: ids as <placeholders>
    template: str  # its path in the OpenAPI document
    params: tuple[str, ...]  # the query parameters it uses (besides limit and cursor)
    kind: Kind
    paths: tuple[str, ...]  # the requests, taken in turn
    how: How = ""


@dataclass(frozen=True, slots=True)
class Picks:
    """What the endpoints ask about, from the fleet as generated."""

    big: str  # the big rollout's operation id
    small: str  # the smallest rollout's
    app: str
    error_code: str
    devices: list[str]
    tasks: list[str]
    middle: int  # a log position half way

    @classmethod
    def of(cls, fleet: Fleet, middle: int, sample: int) -> Picks:
        return cls(
            big=fleet.big.operation_id,
            small=fleet.smallest.operation_id,
            app=fleet.busiest_app,
            error_code="E101",
            devices=fleet.sample_devices(sample),
            tasks=fleet.sample_tasks(sample),
            middle=middle,
        )


def endpoints(p: Picks) -> list[Endpoint]:
    """Every read, labelled as the table shows it (every list asks for `limit=100`)."""
    big = f"/v1/operations/{quote(p.big)}"
    members = "/v1/operations/{operation_id}/devices"
    out = [
        _list("/v1/devices", ""),
        _list("/v1/devices", "", how="deep"),
        _list("/v1/devices", "track=firmware"),
        _list("/v1/devices", "state=downloading"),
        _list("/v1/devices", "state=idle"),
        _list("/v1/devices", "state=idle", how="deep"),
        _list("/v1/devices", "result=FAIL"),
        _list("/v1/devices", "app_id=<app>", app=p.app),
        _list("/v1/devices", "app_id=<app>&state=updating", app=p.app),
        _list("/v1/devices", "operation_id=<big>&state=downloading", big=p.big),
        _list("/v1/devices", "operation_id=<big>&result=FAIL", big=p.big),
        _list("/v1/devices", "stuck_for=3600"),
        _list("/v1/devices", "operation_id=<big>&stuck_for=3600", big=p.big),
    ]
    device, task = "/v1/devices/{device_id}", "/v1/tasks/{task_id}"
    out += [
        _each(
            "GET /v1/devices/{id}",
            device,
            "document",
            [f"/v1/devices/{quote(d)}" for d in p.devices],
        ),
        _each(
            "GET /v1/devices/{id}/transitions",
            f"{device}/transitions",
            "list",
            [f"/v1/devices/{quote(d)}/transitions" for d in p.devices],
        ),
        Endpoint("GET /v1/devices/{id}?at=<position>", device, ("at",), "document", (), "at"),
        _each(
            "GET /v1/operations/<big> (the rollup)",
            "/v1/operations/{operation_id}",
            "operation",
            [big],
        ),
        _each(
            "GET /v1/operations/<small>",
            "/v1/operations/{operation_id}",
            "operation",
            [f"/v1/operations/{quote(p.small)}"],
        ),
        _list("/v1/operations", ""),
        _list("/v1/operations", "track=firmware"),
        _list("/v1/operations", "app_id=<app>", app=p.app),
    ]
    pages: tuple[tuple[str, How], ...] = (
        ("", ""),
        ("state=idle", ""),
        ("result=FAIL", ""),
        ("", "deep"),
    )
    for query, how in pages:
        out.append(_list(members, query, how=how, path=f"{big}/devices"))
    out.append(_list(members, "error_code=<code>", path=f"{big}/devices", code=p.error_code))
    out += [
        _list("/v1/tasks", ""),
        _list("/v1/tasks", "status=Success"),
        _list("/v1/tasks", "task_type=firmwareUpgrade"),
        _each("GET /v1/tasks/{id}", task, "document", [f"/v1/tasks/{quote(t)}" for t in p.tasks]),
        _each(
            "GET /v1/tasks/{id}/transitions",
            f"{task}/transitions",
            "list",
            [f"/v1/tasks/{quote(t)}/transitions" for t in p.tasks],
        ),
        _list("/v1/events", "after=<middle>", middle=str(p.middle)),
    ]
    return out


def _list(template: str, query: str, *, how: How = "", path: str = "", **ids: str) -> Endpoint:
    """A list's first page of 100 (or, `how="deep"`, one from its middle). `query` names ids as
    <placeholders>, filled from `ids`; `path`: the template with its path ids filled."""
    shown = template.replace("{operation_id}", "<big>")
    label = f"GET {shown}{'?' + query if query else ''}"
    label += ", deep page" if how == "deep" else ""
    filled = query
    for name, value in ids.items():
        filled = filled.replace(f"<{name}>", quote(value, safe=""))
    request = f"{path or template}?{filled + '&' if filled else ''}limit=100"
    params = tuple(x.split("=")[0] for x in query.split("&") if x)
    return Endpoint(label, template, params, "list", (request,), how)


def _each(label: str, template: str, kind: Kind, paths: list[str]) -> Endpoint:
    return Endpoint(label, template, (), kind, tuple(paths))


def served(openapi: dict[str, Any] | None, endpoint: Endpoint) -> bool:
    """Whether the server's OpenAPI document lists the path and every parameter used (no
    document: assume so, and let the answers tell)."""
    if openapi is None:
        return True
    shapes = {_shape(path): item for path, item in openapi.get("paths", {}).items()}
    operation = shapes.get(_shape(endpoint.template), {}).get("get")
    if operation is None:
        return False
    declared = {p.get("name") for p in operation.get("parameters", [])}
    return set(endpoint.params) <= declared


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)
