"""Guards and their alerts on the dashboard, in a real browser against a real `tracker serve`:
seeded through the HTTP API alone (a guard PUT with the admin token, notifications posted
across its threshold), the overview and the rollout page show what GET /v1/alerts, /v1/guards
and /v1/webhooks/dead say, quietly when there is nothing, and follow the live `alert` event."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from testkit.server import TrackerProcess, free_port
from tests.e2e.browser import INGEST, READ, notify, open_page, result, screenshot, sign_in, state
from tests.e2e.conftest import StartTracker
from tests.e2e.http import get, request
from tests.support.fake_iotda import FakeIoTDA

ADMIN = "admin-token-for-the-dashboard"
OP = "op-guarded"
CLOCK = 15_000  # ms: the guards' clock reads busy rollouts every second here (TRACKER_GUARD_CLOCK)


def env(database_url: str, **more: str) -> dict[str, str]:
    return {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_INGEST_TOKEN": INGEST,
        "TRACKER_READ_TOKEN": READ,
        "TRACKER_ADMIN_TOKEN": ADMIN,
        "TRACKER_WEBHOOK_HOSTS": "127.0.0.1",
        "TRACKER_GUARD_CLOCK": "1",
        **more,
    }


@pytest.fixture
def server(start_tracker: StartTracker, database_url: str) -> TrackerProcess:
    return start_tracker(env(database_url))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened, console = open_page(browser)
    yield opened
    opened.context.close()
    assert console.unexpected() == []


def put_guard(base: str, name: str, definition: dict[str, object]) -> None:
    answer = request(
        "PUT",
        f"{base}/v1/guards/{name}",
        json.dumps(definition).encode(),
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert answer.status == 201, answer.body


def api(base: str, path: str) -> Any:
    answer = get(base, path, headers={"Authorization": f"Bearer {READ}"})
    assert answer.status == 200, answer.body
    return answer.json()


def until(condition: Callable[[], bool], what: str, within: float = 30) -> None:
    """Poll what the server makes observable (the Playwright thread cannot run an event loop)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:g} s for {what}")
        time.sleep(0.1)


def fail(device: str, code: str = "E-DISK") -> dict[str, object]:
    return {**result(device, "FAIL", code, op=OP), "appId": "app-guarded"}


def succeed(device: str) -> dict[str, object]:
    return {**result(device, "SUCCESS", op=OP), "appId": "app-guarded"}


TOO_MANY = {"scope": {"app_id": "app-guarded"}, "when": {"failed_above": 2}}
RATE = {
    "scope": {"operation_id": OP, "track": "software"},
    "when": {"failure_rate_above": 0.5, "min_results": 2},
}


def test_an_overview_with_no_guard_is_quiet(server: TrackerProcess, page: Page) -> None:
    notify(server.url, state("d-1", "downloading"))
    sign_in(page, server.url)
    expect(page.locator("#alerts")).to_have_text("No alert is firing.")
    expect(page.locator("#alerts .warning")).to_have_count(0)
    expect(page.locator("#guards")).to_contain_text("No guards defined.")
    expect(page.locator("#guards code").first).to_have_text("PUT /v1/guards/{name}")
    expect(page.locator("#dead-letters")).to_be_hidden()
    expect(page.locator("#rollouts .flag.firing")).to_have_count(0)
    screenshot(page, "alerts-overview-quiet")
    page.goto(server.url + "/operations/op-live?track=software")
    expect(page.locator("#alerts")).to_have_text("No guards defined: nothing watches this rollout.")


def test_alerts_fire_on_the_overview_as_failures_arrive(server: TrackerProcess, page: Page) -> None:
    put_guard(server.url, "too-many-failures", TOO_MANY)
    put_guard(
        server.url,
        "rate",
        {**RATE, "webhook": {"url": "http://127.0.0.1:9/hook", "secret": "s" * 16}},
    )
    notify(server.url, state("d-0", "downloading", op=OP) | {"appId": "app-guarded"})
    sign_in(page, server.url)
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#alerts")).to_have_text("No alert is firing. 2 guards are watching.")
    guards = page.locator("#guards tbody tr")
    expect(guards).to_have_count(2)
    expect(guards.nth(0)).to_have_attribute("data-guard", "rate")  # by name
    expect(guards.nth(0).locator("td")).to_have_text(
        [
            "rate",
            "track software · operation op-guarded",
            "failure rate above 50% once 2 results are in",
            "http://127.0.0.1:9/…",  # its origin: the read token sees no more
            "no",
            re.compile(r"\d{4}"),
        ]
    )
    expect(guards.nth(1).locator("td").nth(2)).to_have_text("more than 2 failed")
    page.evaluate("window.notReloaded = true")

    for device in ("d-1", "d-2", "d-3"):
        notify(server.url, fail(device))
    firing = page.locator("#alerts tbody tr")
    expect(firing).to_have_count(2, timeout=5_000)
    listed = api(server.url, "/v1/alerts?state=firing")["items"]
    assert [a["guard"] for a in listed] == ["too-many-failures", "rate"]  # latest fired first
    for row, alert in zip(firing.all(), listed, strict=True):
        expect(row).to_have_attribute("data-alert", alert["id"])
        expect(row).to_have_class("firing")
    cells = firing.nth(0).locator("td")
    expect(cells.nth(0)).to_have_text("too-many-failuresmore than 2 failed")
    expect(cells.nth(1).locator("a")).to_have_attribute("href", f"/operations/{OP}?track=software")
    expect(cells.nth(2)).to_have_text("software")
    expect(cells.nth(3)).to_have_text("3")
    expect(cells.nth(4)).to_have_text("2")
    expect(cells.nth(6)).to_have_text("\u2013")  # no stop: an OceanConnect rollout
    expect(firing.nth(1).locator("td").nth(3)).to_have_text("100%")  # a share, as a percentage
    expect(firing.nth(1).locator("td").nth(4)).to_have_text("50%")
    expect(page.locator("#alerts .warning")).to_contain_text("2 alerts firing")
    expect(page.locator(f"#rollouts tr[data-operation='{OP}'] .flag.firing")).to_have_text(
        "2 alerts"
    )
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "alerts-overview-firing")


def test_the_rollout_page_lists_firing_alerts_first_then_resolved(
    server: TrackerProcess, page: Page
) -> None:
    put_guard(server.url, "too-many-failures", TOO_MANY)
    put_guard(server.url, "rate", RATE)
    for device in ("d-1", "d-2", "d-3"):
        notify(server.url, fail(device))
    sign_in(page, server.url, f"/operations/{OP}?track=software")
    expect(page.locator("#live")).to_have_text("live")
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#alerts .warning")).to_contain_text("2 alerts firing on this rollout.")
    page.evaluate("window.notReloaded = true")

    # Successes bring the failure rate to 3 of 6: not above 50%, so that alert resolves.
    for device in ("d-4", "d-5", "d-6", "d-7"):
        notify(server.url, succeed(device))
    expect(page.locator("#alerts tr[data-guard='rate']")).to_have_attribute(
        "data-state", "resolved", timeout=5_000
    )
    alerts = api(server.url, f"/v1/alerts?operation_id={OP}")["items"]
    resolved = next(a for a in alerts if a["guard"] == "rate")
    assert (resolved["state"], resolved["value"]) == ("resolved", 0.5)
    assert resolved["resolved_at"] is not None
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-guard", "too-many-failures")  # firing first
    expect(rows.nth(0)).to_have_class("firing")
    expect(rows.nth(0).locator(".flag")).to_have_text("firing")
    expect(rows.nth(1)).to_have_attribute("data-guard", "rate")
    expect(rows.nth(1)).not_to_have_class("firing")
    expect(rows.nth(1).locator(".flag")).to_have_text("resolved")
    expect(rows.nth(1).locator("td").nth(3)).to_have_text("50%")  # the reading that resolved it
    expect(rows.nth(1).locator("td").nth(6).locator("time")).to_have_attribute(
        "datetime", resolved["resolved_at"]
    )
    expect(page.locator("#alerts .warning")).to_contain_text("1 alert firing on this rollout.")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "alerts-rollout")

    page.goto(server.url + "/")
    expect(page.locator("#alerts tbody tr")).to_have_count(1)  # the overview: firing alone
    expect(page.locator("#alerts tbody tr")).to_have_attribute("data-guard", "too-many-failures")
    expect(page.locator(f"#rollouts tr[data-operation='{OP}'] .flag.firing")).to_have_text(
        "1 alert"
    )


def test_an_alert_the_guards_clock_fires_reaches_the_overview_live(
    server: TrackerProcess, page: Page
) -> None:
    """A silent rollout fires on time alone: no delivery comes, only the stream's `alert`."""
    notify(server.url, state("d-1", "downloading", op="op-quiet"))
    sign_in(page, server.url)
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#alerts")).to_have_text("No alert is firing.")
    page.evaluate("window.notReloaded = true")
    put_guard(
        server.url, "quiet", {"scope": {"operation_id": "op-quiet"}, "when": {"silent_for": 1}}
    )
    row = page.locator("#alerts tbody tr[data-guard='quiet']")
    expect(row).to_be_visible(timeout=CLOCK)
    expect(row).to_have_attribute("data-operation", "op-quiet")
    expect(row.locator("td").nth(4)).to_have_text("1 s")  # silence as a duration
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "alerts-overview-clock")


def test_a_webhook_given_up_on_is_listed_with_how_to_send_it_again(
    start_tracker: StartTracker, database_url: str, page: Page
) -> None:
    server = start_tracker(env(database_url, TRACKER_WEBHOOK_GIVE_UP="1"))
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: every attempt fails
    put_guard(server.url, "rate", {**RATE, "webhook": {"url": closed, "secret": "s" * 16}})
    for device in ("d-1", "d-2"):
        notify(server.url, fail(device))
    until(lambda: bool(api(server.url, "/v1/webhooks/dead")["items"]), "a dead letter")
    dead = api(server.url, "/v1/webhooks/dead")["items"][0]
    sign_in(page, server.url)
    section = page.locator("#dead-letters")
    expect(section).to_be_visible()
    row = section.locator(f"tr[data-dead='{dead['id']}']")
    expect(row.locator("td")).to_have_text(
        [
            dead["id"],
            "rate",
            closed.removesuffix("hook") + "…",  # its origin: the read token sees no more
            str(dead["attempts"]),
            dead["last_error"],
            re.compile(r"\d"),
        ]
    )
    expect(section.locator(".warning")).to_contain_text(
        "POST /v1/webhooks/dead/{id}/retry and the admin token, or tracker guards retry ID"
    )
    screenshot(page, "alerts-dead-letters")


def iotda_settings(fake: FakeIoTDA) -> dict[str, str]:
    return {
        "TRACKER_IOTDA_ENDPOINT": fake.endpoint,
        "TRACKER_IOTDA_PROJECT_ID": fake.project_id,
        "TRACKER_IOTDA_AK": fake.ak,
        "TRACKER_IOTDA_SK": fake.sk,
        "TRACKER_IOTDA_APP_IDS": "app-stop",
        "TRACKER_IOTDA_RATE": "50",
    }


def test_an_iotda_task_shows_what_came_of_its_stop(
    start_tracker: StartTracker, database_url: str, page: Page
) -> None:
    with FakeIoTDA().in_thread() as fake:
        task = fake.create_task(["s-1", "s-2", "s-3", "s-4"], app_id="app-stop")
        task.set(["s-1", "s-2"], "Fail", error=("E-FLASH", "flash write failed"))
        server = start_tracker(env(database_url, **iotda_settings(fake)))
        put_guard(
            server.url,
            "stop-on-failures",
            {"scope": {"platform": "iotda"}, "when": {"failed_above": 1}, "stop_task": True},
        )

        def stopped() -> bool:
            found = api(server.url, f"/v1/alerts?operation_id={task.task_id}")["items"]
            return bool(found) and found[0]["stop"] is not None

        # Fired by the reconciler's read, or by the clock if that read came before the guard.
        until(stopped, "the firing's StopBatchTask outcome", within=60)
        alert = api(server.url, f"/v1/alerts?operation_id={task.task_id}")["items"][0]
        assert alert["stop"]["outcome"] == "stopping", alert
        sign_in(page, server.url)
        stop = page.locator(f"#alerts tr[data-operation='{task.task_id}'] [data-stop]")
        expect(stop).to_have_attribute("data-stop", "stopping")
        expect(stop).to_have_text("task stopping")
        screenshot(page, "alerts-overview-iotda-stop")
        page.goto(f"{server.url}/operations/{task.task_id}?track=software")
        row = page.locator("#alerts tr[data-guard='stop-on-failures']")
        expect(row).to_have_class("firing")
        expect(row.locator("[data-stop]")).to_have_text("task stopping")
        expect(row.locator("td").nth(2)).to_have_text("more than 1 failed")
        screenshot(page, "alerts-rollout-iotda-stop")
