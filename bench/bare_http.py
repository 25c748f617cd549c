"""Ceiling B: the least an aiohttp server can do per notification, `python -m bench.bare_http`.

It reads the body, parses it with the tracker's JSON parser (orjson), and answers 200 with a
small JSON document. No validation, no database, no access log. One process, like one tracker
worker; uvloop when installed, so the ceiling is as high as aiohttp goes here.
"""

from __future__ import annotations

import argparse

import orjson
from aiohttp import web

ANSWER = b'{"position": 0, "recognised": true}'


async def notification(request: web.Request) -> web.Response:
    document = orjson.loads(await request.read())
    if not isinstance(document, dict):
        return web.Response(status=400)
    return web.Response(body=ANSWER, content_type="application/json")


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/notifications", notification)
    app.router.add_get("/healthz", healthz)
    try:
        import uvloop  # noqa: PLC0415 - optional

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = None
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
