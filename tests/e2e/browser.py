"""A real browser for the dashboard's tests: Debian's chromium driven by Playwright (its own
browser download cannot work here), a fresh one for each test.

A missing chromium fails the tests: `.ci/run` installs it (apt-get install -y chromium).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.e2e.http import Answer, post
from tests.support.tools import required

INGEST, READ = "ingest-token-for-the-dashboard", "read-token-for-the-dashboard"
WIDE = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# Where the tests leave what a person would see (a folder of the repository, ignored by git).
SCREENSHOTS = Path(
    os.environ.get("TRACKER_SCREENSHOTS", Path(__file__).parents[2] / "build" / "screenshots")
)


def chromium() -> str:
    """Debian's chromium; without it (a newcomer's machine) the browser's tests skip, under CI
    they fail (tests/support/tools.py)."""
    return required("chromium", "chromium-browser", install="apt-get install -y chromium")


def launched() -> Iterator[Browser]:
    """For the `browser` fixture (tests/e2e/conftest.py)."""
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Console:
    """Every error the page logged; a test names the ones it causes on purpose."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def heard(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} ({message.location.get('url', '')})")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(part in e for part in self.expected)]


def open_page(browser: Browser, viewport: ViewportSize = WIDE) -> tuple[Page, Console]:
    context = browser.new_context(viewport=viewport, locale="en-US", timezone_id="Europe/Berlin")
    page = context.new_page()
    console = Console()
    page.on("console", console.heard)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    return page, console


def sign_in(page: Page, base: str, path: str = "/", token: str = READ) -> None:
    page.goto(base + path)
    page.fill("#token", token)
    page.click("form.sign-in button[type=submit]")
    rendered(page)


def rendered(page: Page, timeout: float = 10_000) -> None:
    """Wait until the view has drawn its API documents once."""
    page.wait_for_selector("body[data-rendered]", timeout=timeout)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)
    return target


def notify(base: str, document: dict[str, object]) -> Answer:
    answer = post(
        base,
        json.dumps(document).encode(),
        headers={"Authorization": f"Bearer {INGEST}"},
    )
    assert answer.status == 200, answer.body
    return answer


def state(device: str, value: str, op: str = "op-live", sub: str = "sub-1") -> dict[str, object]:
    return {
        "notifyType": "swUpgradeStateChangeNotify",
        "deviceId": device,
        "appId": "app-dash",
        "operationId": op,
        "subOperationId": sub,
        "swUpgradeState": value,
    }


def result(
    device: str, outcome: str, code: str = "0", op: str = "op-live", sub: str = "sub-1"
) -> dict[str, object]:
    return {
        "notifyType": "swUpgradeResultNotify",
        "deviceId": device,
        "appId": "app-dash",
        "operationId": op,
        "subOperationId": sub,
        "curVersion": "2.0" if outcome == "SUCCESS" else "1.0",
        "targetVersion": "2.0",
        "sourceVersion": "1.0",
        "swUpgradeResult": outcome,
        "resultDesc": "ok" if outcome == "SUCCESS" else f"failed with {code}",
        "errorCode": code,
    }
