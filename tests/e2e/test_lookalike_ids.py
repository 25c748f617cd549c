"""Ids that look alike: "café" as U+00E9 and as e + U+0301 are two devices (ids are compared
exactly as sent, never normalised), so the CLI and the dashboard must show them apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, expect
from playwright.sync_api import Error as PlaywrightError

from testkit.server import TrackerProcess
from tests.e2e.browser import (
    INGEST,
    READ,
    SCREENSHOTS,
    notify,
    open_page,
    result,
    screenshot,
    sign_in,
)
from tests.e2e.conftest import StartTracker
from tests.integration.test_checkpoint import append
from tests.support.cli import tracker
from tests.support.task_bodies import task_body

NFC, NFD = "caf\u00e9", "cafe\u0301"  # the same word on screen, two ids
OPERATION = "rollout-\u00fc"


def state(device: str, value: str, op: str = OPERATION) -> dict[str, object]:
    return {
        "notifyType": "swUpgradeStateChangeNotify",
        "deviceId": device,
        "appId": "app-\u00e9",
        "operationId": op,
        "subOperationId": "s",
        "swUpgradeState": value,
    }


async def test_the_cli_shows_look_alike_ids_with_their_escapes(database_url: str) -> None:
    raws = [json.dumps(state(d, "downloading")).encode() for d in (NFC, NFD, "cafe")]
    raws += [task_body(t, event_time_ms="2026-11-27T01:02:03.000Z") for t in (NFC, NFD)]
    await append(database_url, raws)

    listed = tracker(database_url, "devices")
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()[1:]
    assert [row.split("  ")[0] for row in rows] == [
        "cafe",  # ASCII: as it is, nothing added
        "cafe\u0301 [cafe\\u0301]",
        "caf\u00e9 [caf\\u00e9]",
    ]
    assert all("app-\u00e9 [app-\\u00e9]" in row for row in rows)
    assert all("rollout-\u00fc [rollout-\\u00fc]" in row for row in rows)

    for device, escaped in ((NFC, "caf\\u00e9"), (NFD, "cafe\\u0301")):
        one = tracker(database_url, "device", device)
        assert one.returncode == 0, one.stderr
        assert one.stdout.startswith(f"device {device} [{escaped}]  app app-\u00e9 [app-\\u00e9]")
        task = tracker(database_url, "task", device)
        assert task.stdout.startswith(f"task {device} [{escaped}]  app a  ")
        # The documents keep the ids exactly as sent: no normalisation anywhere.
        document = json.loads(tracker(database_url, "device", device, "--json").stdout)
        assert document["device_id"] == device

    members = tracker(database_url, "operation", OPERATION, "--devices")
    assert members.returncode == 0, members.stderr
    assert "caf\u00e9 [caf\\u00e9]" in members.stdout
    assert "cafe\u0301 [cafe\\u0301]" in members.stdout
    rollups = tracker(database_url, "operations")
    assert "rollout-\u00fc [rollout-\\u00fc]" in rollups.stdout


@pytest.fixture
def server(start_tracker: StartTracker, database_url: str) -> TrackerProcess:
    return start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": INGEST,
            "TRACKER_READ_TOKEN": READ,
        }
    )


def failed(device: str) -> dict[str, object]:
    return {**result(device, "FAIL", "E-LOOK"), "operationId": OPERATION, "appId": "app-\u00e9"}


def test_the_dashboard_marks_look_alike_ids(server: TrackerProcess, browser: Browser) -> None:
    for device in (NFC, NFD, "cafe"):
        notify(server.url, state(device, "downloading"))
        notify(server.url, failed(device))
    page, console = open_page(browser)
    sign_in(page, server.url)

    rollout = page.locator(f"#rollouts tr[data-operation='{OPERATION}']")
    expect(rollout.locator("abbr.lookalike")).to_have_count(2)  # the operation's id, its app's
    expect(rollout.locator("a abbr.lookalike")).to_have_text("U+00FC")

    page.goto(f"{server.url}/operations/{OPERATION}?track=software")
    group = page.locator("#failures details[data-error-code='E-LOOK']")
    group.locator("summary").click()
    devices = group.locator("li[data-device]")
    expect(devices).to_have_count(3)
    by_id = {
        device: devices.filter(has=page.locator(f"a[href='/devices/{_path(device)}']"))
        for device in (NFC, NFD, "cafe")
    }
    expect(by_id["cafe"].locator("abbr")).to_have_count(0)
    for device, marker, points in (
        (NFC, "U+00E9", "U+0063 U+0061 U+0066 U+00E9"),
        (NFD, "U+0301", "U+0063 U+0061 U+0066 U+0065 U+0301"),
    ):
        badge = by_id[device].locator("abbr.lookalike")
        expect(badge).to_have_text(marker)
        expect(badge).to_be_visible()
        assert badge.get_attribute("data-code-points") == points
        assert points in (badge.get_attribute("title") or "")
    shot = screenshot(page, "lookalike-ids")
    _assert_a_png(shot)
    near = screenshot_of(group, "lookalike-ids-group")
    _assert_a_png(near)

    page.goto(f"{server.url}/devices/{_path(NFD)}")
    expect(page.locator("h1 abbr.lookalike")).to_have_text("U+0301")
    expect(page.locator("h1 abbr.lookalike")).to_have_attribute(
        "title", "not plain ASCII: cafe\\u0301 = U+0063 U+0061 U+0066 U+0065 U+0301"
    )
    page.context.close()
    assert console.unexpected() == []


def _path(device: str) -> str:
    """The device's page as the dashboard links it (encodeURIComponent)."""
    return "".join(c if c.isascii() else "".join(f"%{b:02X}" for b in c.encode()) for c in device)


def screenshot_of(locator: Locator, name: str) -> Path:
    """A picture of what `locator` finds. The page re-renders a list when a live update
    arrives, which can detach the element between finding it and taking the picture (seen once
    under a loaded CI run): then the locator finds the new one."""
    target = SCREENSHOTS / f"{name}.png"
    for attempt in range(3):
        try:
            locator.screenshot(path=str(target))
        except PlaywrightError as error:
            if "not attached" not in str(error) or attempt == 2:
                raise
        else:
            break
    return target


def _assert_a_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 2_000
