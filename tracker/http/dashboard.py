"""The rollout dashboard's files: one HTML page for every dashboard path (the script renders the
page the path names, from the read API) and its assets, all shipped inside the package
(tracker/dashboard/), read once, served from memory.

No page carries data or a token: what a person sees comes from the same API documents, with the
session cookie (http/session.py), so the dashboard cannot disagree with the API.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from aiohttp import web

from tracker.store.errors import NotFound

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
# Only our own files, no inline script or style, no framing; the API is same-origin.
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@cache
def assets() -> dict[str, Asset]:
    """Every file of tracker/dashboard/ by name (flat: no path ever reaches the disk)."""
    found = {}
    for entry in resources.files("tracker.dashboard").iterdir():
        suffix = entry.name[entry.name.rfind(".") :]
        if entry.is_file() and suffix in TYPES:
            body = entry.read_bytes()
            etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"'
            found[entry.name] = Asset(body, TYPES[suffix], etag)
    return found


async def overview_page(request: web.Request) -> web.Response:
    """Every rollout, newest activity first, with batch tasks beside them."""
    return _page(request)


async def operation_page(request: web.Request) -> web.Response:
    """One rollout: states, results, failures by error, stuck devices, activity, audit."""
    return _page(request)


async def device_page(request: web.Request) -> web.Response:
    """One device: both tracks and its timeline, each delivery's body a click away."""
    return _page(request)


async def rejected_page(request: web.Request) -> web.Response:
    """Refused deliveries: when, why, and the first bytes of each."""
    return _page(request)


def _page(request: web.Request) -> web.Response:
    """The dashboard's one page; its script reads the path and renders that view."""
    return _send(request, assets()["index.html"], PAGE_HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    found = assets().get(name)
    if found is None or name == "index.html":
        raise NotFound(f"no dashboard asset {name!r}")
    return _send(request, found, {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"})


def _send(request: web.Request, found: Asset, headers: dict[str, str]) -> web.Response:
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers={**headers, "ETag": found.etag})
    return web.Response(
        body=found.body, headers={**headers, "ETag": found.etag, "Content-Type": found.content_type}
    )
