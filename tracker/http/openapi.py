"""GET /v1/openapi.json: OpenAPI 3.1, generated from the route table and the pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tracker import __version__
from tracker import documents as doc
from tracker.http.routes import ROUTES, Route

REF = "#/components/schemas/{model}"
ERROR_MEANING = {
    400: "Bad request: not JSON, not an object, not UTF-8, empty, or a bad parameter",
    401: "Missing or wrong token",
    403: "A known token without the right (the read token writes no guard), or guards cannot be "
    "written here (TRACKER_ADMIN_TOKEN unset)",
    404: "Not found",
    408: "Body not received in full in time (TRACKER_BODY_TIMEOUT); retry",
    410: "The body was pruned: archived and removed by tracker prune-unrecognised",
    413: "Body over the limit (an unrecognised body: over TRACKER_UNRECOGNISED_MAX_BYTES)",
    415: "Compressed body (a Content-Encoding other than identity): send it uncompressed",
    422: "Schema violation; details name each field",
    429: "Too many wrong tokens from this client (nothing compared), or, on ingest, today's "
    "budget of unrecognised bodies for this token is spent; retry after Retry-After",
    503: "Database unavailable: nothing was stored; retry",
}


OK_MEANING = {
    200: "OK",
    201: "Created",
    202: "Accepted: queued",
    204: "Done; no content",
}


async def get_openapi(_: web.Request) -> web.Response:
    return web.json_response(document())


@cache
def document() -> dict[str, Any]:
    operations = (*ROUTES, SELF)
    models = _models(operations)
    keys, schemas = models_json_schema([(m, "serialization") for m in models], ref_template=REF)
    refs = {model: keys[(model, "serialization")] for model in models}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tracker",
            "version": __version__,
            "description": "Event-sourced tracker for device upgrades pushed by Huawei IoT "
            "platforms (OceanConnect, IoTDA).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "urlToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def _models(operations: tuple[Route, ...]) -> list[type[BaseModel]]:
    # The live feed's event payloads are documented as components too.
    found: list[type[BaseModel]] = [
        doc.ErrorDocument,
        doc.FeedDeviceTransition,
        doc.FeedTaskTransition,
        doc.FeedAlert,
    ]
    for op in operations:
        found += [m for m in [op.ok, *(op.body or {}).get("models", [])] if m is not None]
    return list(dict.fromkeys(found))


def _operation(op: Route, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    ok_schema = refs[op.ok] if op.ok else {"type": "object" if "json" in op.ok_media else "string"}
    responses: dict[str, Any] = {
        str(status): {"description": OK_MEANING[status]}
        if status in (202, 204)
        else {"description": OK_MEANING[status], "content": {op.ok_media: {"schema": ok_schema}}}
        for status in op.ok_statuses
    }
    # 400 everywhere: the U+0000 guard (http/sanity.py) covers every path and query. 429
    # wherever a token is compared: past its budget of wrong ones, a client waits (attempts.py).
    guessable = {429} if op.guard != "open" or 401 in op.errors else set()
    for status in sorted({400, *op.errors, *guessable}):
        responses[str(status)] = {
            "description": ERROR_MEANING[status],
            "content": {"application/json": {"schema": refs[doc.ErrorDocument]}},
        }
    described: dict[str, Any] = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "tags": [op.tag],
        "parameters": [
            *(
                {
                    "name": p.name,
                    "in": "path",
                    "required": True,
                    "schema": p.schema,
                    "description": p.description,
                }
                for p in op.path_params
            ),
            *op.query.parameters(),  # the model the handler parses its query with
        ],
        "responses": responses,
    }
    if op.description:
        described["description"] = op.description
    if op.guard != "open":
        described["security"] = [{"bearer": []}, {"urlToken": []}]
    if op.body:
        recognised = [refs[m] for m in op.body["models"]]
        described["requestBody"] = {
            "required": op.body["required"],
            "description": op.body["description"],
            "content": {
                "application/json": {"schema": {"anyOf": [*recognised, {"type": "object"}]}}
            },
        }
    return described


SELF = Route(
    "GET", "/v1/openapi.json", get_openapi, "This document", "operations", None, (401,), "read"
)
