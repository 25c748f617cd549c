"""Requests aiohttp cannot parse at all (not HTTP, a broken header, bytes that are not allowed in
a path) answered with our JSON error, like every other error, in one log line.

aiohttp answers those below the application, in its protocol handler, with a text/plain body and
a traceback in the log. Its server builds one handler per connection: ours (protocol.py) is the
same handler with this `handle_error`, answering our document instead. aiohttp's reason quotes
the bytes it choked on, which may hold a token: only a short, masked, escaped snippet of it is
repeated, to the log and to the client.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from tracker.http.errors import ApiError, error_response
from tracker.logs import capped, mask, printable

SNIPPET = 160  # characters of aiohttp's reason, at most, repeated anywhere


class JsonErrors(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer is on its way: only closing is left
            return super().handle_error(request, status, exc, message)
        what = snippet(getattr(exc, "message", None) or message or str(exc or ""))
        if status >= 500:
            self.logger.error("could not answer a request from %s", request.remote, exc_info=exc)
            error = ApiError(status, "internal_error", "internal error; see server log")
        else:
            self.logger.info("malformed request from %s: %s", request.remote, what)
            error = ApiError(status, "malformed_request", f"the request is not valid HTTP: {what}")
        response = error_response(error)
        response.force_close()
        return response


def snippet(text: str) -> str:
    """aiohttp's reason, e.g. "Invalid method encountered:" and on the next line the bytes: its
    first line(s), tokens masked, unprintable characters escaped, at most SNIPPET long."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "unreadable"
    said = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    return capped(printable(mask(said)), SNIPPET)
