"""Access log without secrets: a `token` in the query string is never written out."""

from __future__ import annotations

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger


def redacted(request: web.BaseRequest) -> str:
    if "token" not in request.query:
        return request.path_qs
    query = [(key, "***" if key == "token" else value) for key, value in request.query.items()]
    return str(request.rel_url.with_query(query))


class RedactingAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %s %.1fms',
            request.remote,
            request.method,
            redacted(request),
            response.status,
            response.body_length,
            time * 1000,
        )
