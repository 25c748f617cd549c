"""Every error is JSON: {"error": {"code", "message", "details"}}; an outage is 503, never 500,
and whatever was asked for by a key that was never seen is 404 (the store's `NotFound`)."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from tracker.documents import ErrorBody, ErrorDetail, ErrorDocument
from tracker.store.errors import NotFound, Unavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}


def error_response(error: ApiError) -> web.Response:
    details = [ErrorDetail.model_validate(detail) for detail in error.details]
    body = ErrorDocument(error=ErrorBody(code=error.code, message=error.message, details=details))
    response = web.Response(
        body=body.to_json(),
        status=error.status,
        headers=error.headers,
        content_type="application/json",
    )
    if error.headers.get("Connection", "").lower() == "close":
        # The header alone does not stop aiohttp from keeping the connection open.
        response.force_close()
    return response


def unavailable() -> ApiError:
    return ApiError(
        503,
        "database_unavailable",
        "the database is unavailable; nothing was stored, retry later",
        headers={"Retry-After": "1"},
    )


_AIOHTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error)
    except NotFound as missing:
        return error_response(ApiError(404, "not_found", str(missing)))
    except Unavailable:
        return error_response(unavailable())
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _AIOHTTP_CODES.get(exc.status, "http_error")
        message = f"{exc.reason}: {request.method} {request.path}"
        return error_response(ApiError(exc.status, code, message, headers=_allow(exc)))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal_error", "internal error; see server log"))


def _allow(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
