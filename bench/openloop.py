"""One open-loop client process: `python -m bench.openloop --rate R --seconds S ...`.

wrk waits for an answer before it sends the next request on a connection, so a slow server
also slows the load and hides its own queueing (coordinated omission). This client sends on
a fixed schedule instead, and measures each latency from the time the request was *due*, not
from when a free connection got round to it. It speaks HTTP/1.1 keep-alive directly over
asyncio streams (uvloop when installed) so that it costs little CPU per request.

Prints one JSON document: counts and every latency in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

SEND_TIMEOUT = 30.0  # past this after the last scheduled send, stop waiting


@dataclass
class Tally:
    latencies_us: list[int] = field(default_factory=list)
    ok: int = 0
    errors: int = 0


def requests(args: argparse.Namespace) -> list[bytes]:
    """This process's share of the bodies (every `stride`th, from `index`), ready to write."""
    head = f"POST {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
    head += "Content-Type: application/json\r\n"
    if args.authorization:
        head += f"Authorization: {args.authorization}\r\n"
    with open(args.bodies, "rb") as source:  # noqa: PTH123 - read before the loop runs
        lines = source.read().splitlines()
    mine = lines[args.index :: args.stride]
    return [(head + f"Content-Length: {len(b)}\r\n\r\n").encode() + b for b in mine]


async def read_status(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, whether the server keeps the connection open) of one response."""
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    if b"transfer-encoding: chunked" in head:
        while size := int((await reader.readline()).strip(), 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.index(b"\r\n", start)]) if start >= 0 else 0
        await reader.readexactly(length)
    return status, b"connection: close" not in head


async def connection(
    args: argparse.Namespace,
    prepared: list[bytes],
    queue: asyncio.Queue[tuple[float, int]],
    tally: Tally,
) -> None:
    reader, writer = await asyncio.open_connection(args.host, args.port)
    try:
        while True:
            due, number = await queue.get()
            try:
                writer.write(prepared[number % len(prepared)])
                status, keep = await read_status(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, keep = 0, False
            tally.latencies_us.append(int((time.monotonic() - due) * 1_000_000))
            if 200 <= status < 400:
                tally.ok += 1
            else:
                tally.errors += 1
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(args.host, args.port)
            queue.task_done()
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> Tally:
    prepared, tally = requests(args), Tally()
    queue: asyncio.Queue[tuple[float, int]] = asyncio.Queue()
    clients = [
        asyncio.create_task(connection(args, prepared, queue, tally))
        for _ in range(args.connections)
    ]
    await asyncio.sleep(0.2)  # let the connections open
    total = int(args.rate * args.seconds)
    start = time.monotonic()  # not loop.time(): uvloop's clock ticks in milliseconds
    first = args.offset // args.stride
    for sent in range(total):
        due = start + sent / args.rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, first + sent))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SEND_TIMEOUT):
            await queue.join()
    tally.errors += total - tally.ok - tally.errors  # never answered
    for client in clients:
        client.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    return tally


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop  # noqa: PLC0415 - optional: a cheaper event loop when installed
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/v1/notifications")
    parser.add_argument("--authorization", default="")
    parser.add_argument("--bodies", required=True, help="one JSON body per line")
    parser.add_argument("--index", type=int, default=0, help="this process's number")
    parser.add_argument("--stride", type=int, default=1, help="how many processes share the load")
    parser.add_argument("--offset", type=int, default=0, help="bodies already sent before")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        tally = runner.run(run(args))
    sys.stdout.buffer.write(orjson.dumps(tally.__dict__))


if __name__ == "__main__":
    main()
