"""Behind a proxy we trust (`--trust-proxy`): the scheme and the client address it forwards.

A proxy that terminates TLS talks plain HTTP to us, so without this the session cookie would
lose `Secure`, and every client would share the proxy's address in the wrong-token count.
Only the last value of each header is taken: it is the one our proxy wrote; anything before it
came from the client and could say anything. Without `--trust-proxy` this middleware is not
installed at all, and the headers mean nothing.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

SCHEMES = {"http", "https"}


@web.middleware
async def trust_forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    changes: dict[str, Any] = {}
    scheme = _last(request, "X-Forwarded-Proto").lower()
    if scheme in SCHEMES:
        changes["scheme"] = scheme
    address = _last(request, "X-Forwarded-For")
    if _is_address(address):
        changes["remote"] = address
    return await handler(request.clone(**changes) if changes else request)


def _last(request: web.Request, name: str) -> str:
    """The last hop's value: of the last header of that name, the last comma-separated item."""
    return ",".join(request.headers.getall(name, [])).rpartition(",")[2].strip()


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
