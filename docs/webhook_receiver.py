"""A receiver for tracker's guard webhooks, to copy: it checks what a receiver must check, in
order, and prints each alert change once.

    python docs/webhook_receiver.py --port 9000 --secret "$WEBHOOK_SECRET" [--show]

1. `X-Tracker-Signature` is `sha256=` and the hex HMAC-SHA256 of the body's exact bytes under
   the guard's secret: compared in constant time, before the JSON is even parsed (401 if not).
2. `X-Tracker-Timestamp` (unix seconds of this attempt) within 5 minutes of our clock (401).
3. Delivery is at least once: the body's `id` is unique per change, so a change seen before is
   answered 200 (so it is not sent again) and not acted on twice.
Any 2xx ends the retries; anything else, or no answer within TRACKER_WEBHOOK_TIMEOUT, is retried
with backoff until TRACKER_WEBHOOK_GIVE_UP. Needs only aiohttp (and the standard library).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import time

from aiohttp import web

TOLERANCE = 300  # seconds


def signed(secret: bytes, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.encode())


def fresh(header: str, now: float) -> bool:
    return header.isdigit() and abs(now - int(header)) <= TOLERANCE


def application(secret: bytes, *, show: bool = False) -> web.Application:
    seen: set[str] = set()  # a real receiver keeps these where a restart does not lose them

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(secret, body, request.headers.get("X-Tracker-Signature", "")):
            return web.Response(status=401, text="bad signature")
        if not fresh(request.headers.get("X-Tracker-Timestamp", ""), time.time()):
            return web.Response(status=401, text="stale timestamp")
        change = json.loads(body)
        if change["id"] in seen:
            print(f"again (ignored): {change['id']}", flush=True)
            return web.Response(text="seen before")
        seen.add(change["id"])
        print(
            f"{change['state'].upper()} {change['guard']} on {change['operation_id']} "
            f"({change['track']}): {change['value']:g} against {change['threshold']:g} at "
            f"{change['at']} [{change['id']}]",
            flush=True,
        )
        if show:  # what came, as it came
            for name in ("X-Tracker-Signature", "X-Tracker-Timestamp"):
                print(f"  {name}: {request.headers[name]}", flush=True)
            print(f"  {body.decode()}", flush=True)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", receive)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--secret", required=True, help="the guard's webhook secret")
    parser.add_argument("--show", action="store_true", help="print the headers and body too")
    args = parser.parse_args()
    app = application(args.secret.encode(), show=args.show)
    web.run_app(app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
