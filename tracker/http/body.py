"""Reading a request body: every route through here, each with a deadline and a size cap.

aiohttp bounds neither by itself: a sender that declares 100 kB and sends one byte holds its
connection and its handler for as long as it likes, and a compressed body is inflated as it
arrives. The server never inflates (see protocol.py); a body must arrive whole within
TRACKER_BODY_TIMEOUT of the handler asking for it (else 408, and the connection is closed), and
no more than the route's limit is ever read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from tracker.http.errors import ApiError
from tracker.http.keys import SETTINGS

READ_CHUNK = 64 * 1024
CLOSE = {"Connection": "close"}


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes  # all of it, or its first `limit` bytes when not `complete`
    complete: bool  # False: the body is longer than the limit; the rest was never read


async def read_body(request: web.Request, limit: int) -> Body:
    """Read at most `limit` bytes of the body, within the body deadline.

    Raises ApiError 408 (`body_timeout`) when the deadline passes and 400 (`incomplete_body`)
    when the sender hangs up or breaks the chunked framing: neither leaves a delivery to keep.
    """
    seconds = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds if seconds > 0 else None):
            return await _read_up_to(request, limit)
    except TimeoutError:
        raise ApiError(
            408,
            "body_timeout",
            f"the body did not arrive within {seconds:g} s of the headers (TRACKER_BODY_TIMEOUT)",
            headers=CLOSE,
        ) from None
    except (
        RequestPayloadError,
        aiohttp.ClientError,
        ConnectionError,
        asyncio.IncompleteReadError,
    ) as error:
        raise ApiError(
            400, "incomplete_body", f"the body could not be read in full: {error}"
        ) from None


async def read_whole(request: web.Request, limit: int) -> bytes:
    """The whole body, or 413 (and the connection closed) if it is longer than `limit`."""
    body = await read_body(request, limit)
    if not body.complete:
        raise ApiError(413, "body_too_large", too_large(request, limit), headers=CLOSE)
    return body.data


def too_large(request: web.Request, limit: int) -> str:
    declared = request.content_length
    size = f"{declared} bytes" if declared is not None else f"more than {limit} bytes"
    return f"the body is {size}; the limit is {limit} bytes"


def content_encoding(request: web.Request) -> str | None:
    """The body's Content-Encoding, unless it is none or `identity`: we never inflate one."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    return None if encoding in {"", "identity"} else encoding


async def _read_up_to(request: web.Request, limit: int) -> Body:
    """Nothing past the limit is read: a body declared too large is not read beyond the prefix."""
    body = bytearray()
    declared = request.content_length
    if declared is not None and declared > limit:
        while len(body) < limit and (chunk := await request.content.read(limit - len(body))):
            body += chunk
        return Body(bytes(body), complete=False)
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            return Body(bytes(body[:limit]), complete=False)
    return Body(bytes(body), complete=True)
