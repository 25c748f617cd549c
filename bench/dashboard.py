"""`python -m bench dashboard [--devices N] [--smoke]`: the dashboard's pages at fleet size.

Loads a generated fleet (the scale benchmark's generator and the COPY loader), builds the
projections with `tracker replay`, starts `tracker serve`, signs Debian's chromium in, and opens
each page `--loads` times: the figure is the time from navigation to the page's first render from
its API documents (`body[data-rendered]`), which holds the HTML, the scripts and every API call
the page makes, as a person waits for it. The API calls' own share is read from the browser's
resource timings. Target (issue 13): ≤ 300 ms a page at 1,000,000 devices.

Then, with the largest rollout's page open, it posts 100 state reports a second to that rollout
for `--live-seconds` and counts what the page did: how many times it drew (bursts coalesced,
not one draw per event), and how long its main thread was blocked (long tasks, > 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from playwright.sync_api import Page, sync_playwright

from bench import copyload, postgres, report
from bench.ingest import INGEST_HEADERS, READ_TOKEN, serving
from bench.replay import replay_once
from bench.scale import fleetgen
from bench.scale.plan import plan
from bench.scale.reads import Client

TARGET_MS = 300.0
LIVE_RATE = 100  # deliveries a second while the rollout's page is open
# Counting draws and main-thread stalls from inside the page.
WATCH = """() => {
  window.__draws = 0; window.__blocked = 0; window.__longest = 0;
  new MutationObserver(() => { window.__draws += 1; })
    .observe(document.body, { attributes: true, attributeFilter: ["data-rendered"] });
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__blocked += e.duration; window.__longest = Math.max(window.__longest, e.duration);
    }
  }).observe({ type: "longtask" });
}"""
# What the page asked of the API, as the browser timed it: the calls' span, first start to last end.
API_SPAN = """() => {
  const calls = performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/")
    && !e.name.includes("/v1/stream") && !e.name.includes("/v1/session"));
  if (!calls.length) return [0, 0];
  const start = Math.min(...calls.map((e) => e.startTime));
  const end = Math.max(...calls.map((e) => e.responseEnd));
  return [calls.length, end - start];
}"""
STEPS = {"idle": "0", "downloading": "1", "downloaded": "2", "updating": "3"}


@dataclass
class Live:
    seconds: float = 0.0
    posted: int = 0
    draws: int = 0
    blocked_ms: float = 0.0
    longest_ms: float = 0.0

    def said(self) -> str:
        rate, draws = self.posted / (self.seconds or 1e-9), self.draws / (self.seconds or 1e-9)
        return (
            f"Live, the rollout's page open: {self.posted:,} deliveries in {self.seconds:.1f} s "
            f"({rate:,.0f}/s) drew it {self.draws} times ({draws:.1f}"
            f"/s: one draw per burst, not per event); main thread blocked {self.blocked_ms:.0f} ms "
            f"in all (long tasks), the longest {self.longest_ms:.0f} ms"
        )


@dataclass
class PageTiming:
    name: str
    path: str
    render_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    calls: int = 0

    def row(self) -> tuple[object, ...]:
        median = statistics.median(self.render_ms)
        return (
            *(self.name, f"{median:.0f}", f"{max(self.render_ms):.0f}", self.calls),
            *(f"{statistics.median(self.api_ms):.0f}", f"≤ {TARGET_MS:.0f}"),
            report.met(median <= TARGET_MS),
        )


def options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench dashboard",
        description="The dashboard's pages, first render, at fleet size.",
    )
    parser.add_argument("--devices", type=int, help="fleet size (1,000,000; smoke 2,000)")
    parser.add_argument("--loads", type=int, help="timed loads of each page (15; smoke 3)")
    parser.add_argument("--smoke", action="store_true", help="tiny (CI)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live-seconds", type=int, help="posting with the page open (10; smoke 2)")
    args = parser.parse_args(argv)
    args.devices = args.devices or (2_000 if args.smoke else 1_000_000)
    args.loads = args.loads or (3 if args.smoke else 15)
    args.live_seconds = args.live_seconds or (2 if args.smoke else 10)
    return args


def time_pages(port: int, pages: list[PageTiming], loads: int, live: Live) -> None:
    """Each page, one untimed load first (the server's and the browser's caches warm), then
    `loads` timed ones, in a signed-in browser; then the rollout's page under live load."""
    if not (chromium := shutil.which("chromium")):
        raise SystemExit(
            "the dashboard benchmark needs Debian's chromium: apt-get install chromium"
        )
    base, client = f"http://127.0.0.1:{port}", Client(port)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            answer = page.request.post(base + "/v1/session", data={"token": READ_TOKEN})
            if not answer.ok:
                raise RuntimeError(f"sign-in refused: {answer.status} {answer.text()}")
            for timing in pages:
                for load in range(loads + 1):
                    page.goto("about:blank")
                    page.goto(base + timing.path, wait_until="commit")
                    page.wait_for_selector("body[data-rendered]", timeout=60_000)
                    shown = "Number(document.body.dataset.rendered) - performance.timeOrigin"
                    rendered, (calls, span) = float(page.evaluate(shown)), page.evaluate(API_SPAN)
                    if load:
                        timing.render_ms.append(rendered)
                        timing.api_ms.append(float(span))
                        timing.calls = int(calls)
            watch_live(page, client, base + pages[1].path, live)
        finally:
            browser.close()
            client.close()


def watch_live(page: Page, client: Client, url: str, live: Live) -> None:
    """Post LIVE_RATE reports a second to the rollout on the page, and count its draws."""
    page.goto(url)
    page.wait_for_selector("body[data-rendered]")
    page.wait_for_function("document.getElementById('live').dataset.state === 'live'")
    operation_id, track = url.split("/operations/")[1].split("?track=")
    path = f"/v1/operations/{operation_id}/devices?track={track}&limit=1000"
    members = client.json(path)["items"]
    page.evaluate(WATCH)
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < live.seconds:
        member = members[live.posted % len(members)]
        state = ("downloading", "downloaded", "updating", "idle")[live.posted % 4]
        body = {
            "deviceId": member["device_id"],
            "appId": member["app_id"],
            "operationId": operation_id,
            "subOperationId": f"bench-{live.posted // 4}",
        }
        if track == "software":
            body |= {"notifyType": "swUpgradeStateChangeNotify", "swUpgradeState": state}
        else:
            body |= {"notifyType": "fwUpgradeStateChangeNotify", "step": STEPS[state]}
        status, said = client.send(
            "POST", "/v1/notifications", orjson.dumps(body), **INGEST_HEADERS
        )
        if status != 200:
            raise RuntimeError(f"posting refused: {status} {said[:200]!r}")
        live.posted += 1
        time.sleep(max(0.0, live.posted / LIVE_RATE - (time.monotonic() - started)))
    page.wait_for_timeout(1000)  # the last burst drawn
    live.seconds = elapsed
    live.draws = int(page.evaluate("window.__draws"))
    live.blocked_ms = float(page.evaluate("window.__blocked"))
    live.longest_ms = float(page.evaluate("window.__longest"))


def _pages(client: Client) -> list[PageTiming]:
    """The overview, the largest rollout, one of its devices, the refusals."""
    big = max(client.json("/v1/operations?limit=200")["items"], key=lambda op: op["devices"])
    path = f"/v1/operations/{big['operation_id']}/devices?track={big['track']}&limit=1"
    member = client.json(path)["items"][0]
    return [
        PageTiming("overview", "/"),
        PageTiming(
            f"rollout ({big['devices']:,} devices)",
            f"/operations/{big['operation_id']}?track={big['track']}",
        ),
        PageTiming("device", f"/devices/{member['device_id']}"),
        PageTiming("rejected", "/rejected"),
    ]


async def run(args: argparse.Namespace) -> None:
    fleet = plan(args.devices, args.seed, int(time.time() * 1_000_000))
    with postgres.server() as (server_url, source), tempfile.TemporaryDirectory() as tmp:
        print(f"PostgreSQL: {source}; {args.devices:,} devices", flush=True)
        async with postgres.fresh_database(server_url) as url:
            loaded = await copyload.load(url, fleetgen.stream(fleet), fleet.expected_events)
            print(f"loaded {loaded.events:,} events in {loaded.seconds:.0f} s", flush=True)
            replayed = await asyncio.to_thread(replay_once, url, loaded.events)
            print(f"replayed in {replayed.seconds:.0f} s", flush=True)
            await postgres.timed(url, "VACUUM (ANALYZE)")
            async with serving(url, Path(tmp) / "tracker.log") as server:
                client = Client(server.port)
                pages, live = _pages(client), Live(seconds=args.live_seconds)
                client.close()
                await asyncio.to_thread(time_pages, server.port, pages, args.loads, live)
    print(f"\nDashboard, first render, {args.devices:,} devices, {args.loads} loads a page\n")
    header = (
        "page",
        "median ms",
        "worst ms",
        "API calls",
        "their span, median ms",
        "target",
        "met?",
    )
    print(report.markdown(header, [p.row() for p in pages]))
    print(f"\n{live.said()}")


def main(argv: list[str]) -> int:
    asyncio.run(run(options(argv)))
    return 0
