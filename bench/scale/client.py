"""One keep-alive HTTP/1.1 connection, as lean a client as the standard library has
(`http.client`), so a request's time is mostly the server's: one request at a time, timed from
sending it to the last byte of the answer read."""

from __future__ import annotations

import http.client
import time
from urllib.parse import quote

import orjson

from bench.load import percentile
from bench.server import READ_HEADERS


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            try:
                self.connection.request("GET", path, headers=READ_HEADERS)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError  # unreachable

    def json(self, path: str) -> object:
        status, body = self.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        return orjson.loads(body)

    def timed(self, paths: list[str], warmup: int, count: int) -> tuple[list[float], int]:
        """`warmup` then `count` requests, each the next of `paths` in turn: (seconds of each
        timed one, the first status other than 200, or 200)."""
        for i in range(warmup):
            status, _ = self.get(paths[i % len(paths)])
            if status != 200:
                return [], status
        seconds = []
        for i in range(count):
            began = time.perf_counter()
            status, _ = self.get(paths[(warmup + i) % len(paths)])
            seconds.append(time.perf_counter() - began)
            if status != 200:
                return seconds, status
        return seconds, 200

    def walk(self, path: str, depth: int) -> tuple[str | None, int]:
        """Follow `next_cursor` from `path` (pages of 1,000) until `depth` items are behind:
        (a cursor from there, or the last one if the list ends sooner; items behind it)."""
        behind, cursor = 0, None
        while behind < depth:
            page = self.json(with_cursor(with_limit(path, 1000), cursor))
            if not isinstance(page, dict):
                raise TypeError(f"GET {path}: not a page: {page!r:.200}")
            if page.get("next_cursor") is None:
                break
            behind += len(page["items"])
            cursor = page["next_cursor"]
        return cursor, behind

    def close(self) -> None:
        self.connection.close()


def with_limit(path: str, limit: int) -> str:
    base, _, query = path.partition("?")
    kept = [p for p in query.split("&") if p and not p.startswith("limit=")]
    return f"{base}?{'&'.join([*kept, f'limit={limit}'])}"


def with_cursor(path: str, cursor: str | None) -> str:
    if cursor is None:
        return path
    return f"{path}{'&' if '?' in path else '?'}cursor={quote(cursor, safe='')}"


def p50_p99_ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000
