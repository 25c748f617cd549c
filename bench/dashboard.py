"""`python -m bench dashboard [--devices N] [--smoke]`: the dashboard's pages at fleet size.

Loads a generated fleet (the scale benchmark's generator and COPY loader), builds the projections
with `tracker replay`, starts `tracker serve`, signs Debian's chromium in, and opens each page
`--loads` times: the figure is the time from navigation to the page's first render from its API
documents (`body[data-rendered]`), which holds the HTML, the scripts and every API call the page
makes, as a person waits for it. The API calls' own share is read from the browser's resource
timings. Target (issue 13): ≤ 300 ms a page at 1,000,000 devices.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from playwright.sync_api import Page, sync_playwright

from bench import postgres
from bench.replay_rate import replay_once
from bench.scale import copyload, fleetgen
from bench.scale.plan import plan
from bench.server import READ_HEADERS, READ_TOKEN, tracker
from tests.e2e.http import get

TARGET_MS = 300.0
# What the page asked of the API, as the browser timed it: the calls' span, first start to last end.
API_SPAN = """() => {
  const calls = performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/")
    && !e.name.includes("/v1/stream") && !e.name.includes("/v1/session"));
  if (!calls.length) return [0, 0];
  const start = Math.min(...calls.map((e) => e.startTime));
  const end = Math.max(...calls.map((e) => e.responseEnd));
  return [calls.length, end - start];
}"""


@dataclass
class PageTiming:
    name: str
    path: str
    render_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    calls: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.render_ms)

    @property
    def worst(self) -> float:
        return max(self.render_ms)


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench dashboard",
        description="The dashboard's pages, first render, at fleet size.",
    )
    parser.add_argument("--devices", type=int, help="fleet size (1,000,000; smoke 2,000)")
    parser.add_argument("--loads", type=int, help="timed loads of each page (15; smoke 3)")
    parser.add_argument("--smoke", action="store_true", help="tiny (CI)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    args.devices = args.devices or (2_000 if args.smoke else 1_000_000)
    args.loads = args.loads or (3 if args.smoke else 15)
    return args


def chromium() -> str:
    found = shutil.which("chromium")
    if not found:
        raise SystemExit(
            "the dashboard benchmark needs Debian's chromium: apt-get install chromium"
        )
    return found


def time_pages(base: str, pages: list[PageTiming], loads: int) -> None:
    """Each page, one untimed load first (the server's and the browser's caches warm), then
    `loads` timed ones, in a signed-in browser."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            answer = page.request.post(base + "/v1/session", data={"token": READ_TOKEN})
            if not answer.ok:
                raise RuntimeError(f"sign-in refused: {answer.status} {answer.text()}")
            for timing in pages:
                for load in range(loads + 1):
                    rendered, span = _load(page, base + timing.path)
                    if load:
                        timing.render_ms.append(rendered)
                        timing.calls, api = span
                        timing.api_ms.append(api)
        finally:
            browser.close()


def _load(page: Page, url: str) -> tuple[float, tuple[int, float]]:
    page.goto("about:blank")
    page.goto(url, wait_until="commit")
    page.wait_for_selector("body[data-rendered]", timeout=60_000)
    rendered = float(
        page.evaluate("Number(document.body.dataset.rendered) - performance.timeOrigin")
    )
    calls, span = page.evaluate(API_SPAN)
    return rendered, (int(calls), float(span))


async def run(args: argparse.Namespace) -> int:
    fleet = plan(args.devices, args.seed, int(time.time() * 1_000_000))
    with postgres.server() as (server_url, source), tempfile.TemporaryDirectory() as tmp:
        print(f"PostgreSQL: {source}; {args.devices:,} devices", flush=True)
        async with postgres.fresh_database(server_url) as url:
            loaded = await copyload.load(url, fleetgen.stream(fleet), fleet.expected_events)
            print(f"loaded {loaded.events:,} events in {loaded.seconds:.0f} s", flush=True)
            replayed = await asyncio.to_thread(replay_once, url, loaded.events)
            print(f"replayed in {replayed.seconds:.0f} s", flush=True)
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("VACUUM (ANALYZE)")
            finally:
                await conn.close()
            async with tracker(url, Path(tmp) / "tracker.log") as server:
                pages = _pages(server.url)
                await asyncio.to_thread(time_pages, server.url, pages, args.loads)
    _report(pages, args)
    return 0


def _pages(base: str) -> list[PageTiming]:
    """The overview, the largest rollout, one of its devices, the refusals."""
    rollouts = get(base, "/v1/operations?limit=200", headers=READ_HEADERS).json()["items"]
    big = max(rollouts, key=lambda op: op["devices"])
    member = get(
        base,
        f"/v1/operations/{big['operation_id']}/devices?track={big['track']}&limit=1",
        headers=READ_HEADERS,
    ).json()["items"][0]
    return [
        PageTiming("overview", "/"),
        PageTiming(
            f"rollout ({big['devices']:,} devices)",
            f"/operations/{big['operation_id']}?track={big['track']}",
        ),
        PageTiming("device", f"/devices/{member['device_id']}"),
        PageTiming("rejected", "/rejected"),
    ]


def _report(pages: list[PageTiming], args: argparse.Namespace) -> None:
    print(f"\nDashboard, first render, {args.devices:,} devices, {args.loads} loads a page\n")
    print("| page | median ms | worst ms | API calls | their span, median ms | target | met? |")
    print("|---|---|---|---|---|---|---|")
    for p in pages:
        met = "yes" if p.median <= TARGET_MS else "**NO**"
        print(
            f"| {p.name} | {p.median:.0f} | {p.worst:.0f} | {p.calls} | "
            f"{statistics.median(p.api_ms):.0f} | ≤ {TARGET_MS:.0f} | {met} |"
        )


def main(argv: list[str]) -> int:
    return asyncio.run(run(options(argv)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
