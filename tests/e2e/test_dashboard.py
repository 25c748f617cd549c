"""The dashboard in a real browser against a real `tracker serve`: what a person sees equals what
the API says, moves live, survives a restart, and stays behind the read token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from testkit.server import TrackerProcess
from tests.e2e.browser import (
    INGEST,
    PHONE,
    READ,
    WIDE,
    notify,
    open_page,
    result,
    screenshot,
    sign_in,
    state,
)
from tests.e2e.conftest import StartTracker
from tests.e2e.http import get, post, request
from tests.support.cli import tracker

READ_HEADERS = {"Authorization": f"Bearer {READ}"}


@pytest.fixture
def server(start_tracker: StartTracker, database_url: str) -> TrackerProcess:
    return start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": INGEST,
            "TRACKER_READ_TOKEN": READ,
        }
    )


def rollout(base: str) -> None:
    """One rollout of eight devices caught at every stage, two kinds of failure, an invalid move,
    a firmware rollout beside it, and a batch task."""
    for device in ("d-1", "d-2", "d-3", "d-4", "d-5", "d-6", "d-7", "d-8"):
        notify(base, state(device, "downloading"))
    for device in ("d-3", "d-4", "d-5", "d-6", "d-7", "d-8"):
        notify(base, state(device, "downloaded"))
    for device in ("d-4", "d-5", "d-6", "d-7", "d-8"):
        notify(base, state(device, "updating"))
    for device in ("d-5", "d-6", "d-7", "d-8"):
        notify(base, state(device, "idle"))
    notify(base, result("d-5", "SUCCESS"))
    notify(base, result("d-6", "FAIL", "E-DISK"))
    notify(base, result("d-7", "FAIL", "E-DISK"))
    notify(base, result("d-8", "FAIL", "E-POWER"))
    notify(base, state("d-9", "downloading"))
    notify(base, state("d-9", "updating"))  # skips downloaded: not a move the platform makes
    fw = {**state("d-1", "downloading", op="op-fw"), "notifyType": "fwUpgradeStateChangeNotify"}
    del fw["swUpgradeState"]
    notify(base, {**fw, "step": "1", "stepDesc": "downloading"})
    notify(
        base,
        {
            "resource": "batchtask",
            "event": "update",
            "event_time": "20261127T080000Z",
            "notify_data": {
                "body": {
                    "app_id": "app-dash",
                    "task_id": "task-1",
                    "task_type": "softwareUpgrade",
                    "status": "Processing",
                    "status_desc": "running",
                }
            },
        },
    )


def api(base: str, path: str) -> dict[str, object]:
    answer = get(base, path, headers=READ_HEADERS)
    assert answer.status == 200, answer.body
    document: dict[str, object] = answer.json()
    return document


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened, console = open_page(browser)
    yield opened
    opened.context.close()
    assert console.unexpected() == []


def test_the_overview_shows_what_the_api_says(server: TrackerProcess, page: Page) -> None:
    rollout(server.url)
    sign_in(page, server.url)
    listed = api(server.url, "/v1/operations?stuck_for=3600&limit=50")["items"]
    assert isinstance(listed, list)
    rows = page.locator("#rollouts tbody tr")
    expect(rows).to_have_count(len(listed))
    for index, op in enumerate(listed):
        row = rows.nth(index)  # same order: newest activity first
        assert row.get_attribute("data-operation") == op["operation_id"]
        assert row.get_attribute("data-track") == op["track"]
        cells = row.locator("td")
        assert number(cells.nth(3).inner_text()) == op["devices"]
        assert number(cells.nth(5).inner_text()) == op["results"]["SUCCESS"]
        assert number(cells.nth(6).inner_text()) == op["results"]["FAIL"]
        assert number(cells.nth(8).inner_text()) == op["stuck"]
        shown = {
            seg.get_attribute("data-state"): int(seg.get_attribute("data-count") or 0)
            for seg in cells.nth(4).locator(".seg").all()
        }
        assert shown == {s: n for s, n in op["states"].items() if n}
    live = next(op for op in listed if op["operation_id"] == "op-live")
    assert live["devices"] == 9
    assert live["results"] == {"SUCCESS": 1, "FAIL": 3}
    expect(page.locator("#tasks [data-task='task-1']")).to_contain_text("Processing")
    expect(page.locator("#live")).to_have_text("live")
    screenshot(page, "overview-wide")
    page.set_viewport_size(PHONE)
    screenshot(page, "overview-phone")


def test_a_delivery_moves_the_progress_bar_without_a_reload(
    server: TrackerProcess, page: Page
) -> None:
    rollout(server.url)
    sign_in(page, server.url)
    expect(page.locator("#live")).to_have_text("live")
    bar = page.locator("#rollouts tr[data-operation='op-live'] .seg.downloading")
    expect(bar).to_have_attribute("data-count", "2")
    page.evaluate("window.notReloaded = true")
    began = time.monotonic()
    notify(server.url, state("d-1", "downloaded"))
    expect(bar).to_have_attribute("data-count", "1", timeout=5_000)
    print(f"progress bar moved {time.monotonic() - began:.2f} s after the 200")
    downloaded = page.locator("#rollouts tr[data-operation='op-live'] .seg.downloaded")
    expect(downloaded).to_have_attribute("data-count", "2")
    assert page.evaluate("window.notReloaded") is True


def test_an_invalid_move_is_marked_on_the_device_page(server: TrackerProcess, page: Page) -> None:
    rollout(server.url)
    sign_in(page, server.url, "/devices/d-9")
    rows = page.locator("#timeline tbody tr[data-position]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-valid", "true")
    expect(rows.nth(1)).to_have_attribute("data-valid", "false")
    expect(rows.nth(1).locator(".flag.invalid")).to_have_text("invalid")
    expect(page.locator("[data-track='software'] [data-field='state']")).to_have_text("updating")
    # Times in the viewer's zone (this browser is in Berlin), UTC on hover.
    received = rows.nth(1).locator("time")
    assert (received.get_attribute("title") or "").endswith("Z (UTC)")
    assert received.get_attribute("datetime") != received.inner_text()
    rows.nth(1).get_by_role("button", name="body").click()
    body = page.locator("#timeline tr.body-row:not([hidden]) pre")
    expect(body).to_contain_text('"swUpgradeState": "updating"')
    screenshot(page, "device-wide")
    page.set_viewport_size(PHONE)
    screenshot(page, "device-phone")


def test_a_failure_group_lists_exactly_its_devices(server: TrackerProcess, page: Page) -> None:
    rollout(server.url)
    sign_in(page, server.url, "/operations/op-live?track=software")
    groups = page.locator("#failures details")
    expect(groups).to_have_count(2)
    disk = page.locator("#failures details[data-error-code='E-DISK']")
    expect(disk.locator("summary")).to_contain_text("2 devices")
    disk.locator("summary").click()
    expect(disk.locator("li[data-device]")).to_have_text(["d-6", "d-7"])  # by device id
    power = page.locator("#failures details[data-error-code='E-POWER']")
    power.locator("summary").click()
    expect(power.locator("li[data-device]")).to_have_text(["d-8"])
    expect(page.locator("#states [data-result='FAIL'] strong")).to_have_text("3")
    # What an auditor looks for: the invalid move counted and listed, the activity drawn.
    expect(page.locator("#invalid [data-invalid]")).to_have_attribute("data-invalid", "1")
    expect(page.locator("#invalid tbody tr")).to_have_count(1)
    expect(page.locator("#invalid tbody tr")).to_have_attribute("data-device", "d-9")
    activity = api(server.url, "/v1/operations/op-live/activity")["items"]
    assert isinstance(activity, list)
    reports = sum(bucket["reports"] for bucket in activity)
    label = page.locator("#activity svg").get_attribute("aria-label") or ""
    assert f"{reports} state reports (1 invalid), 1 successes, 3 failures" in label
    screenshot(page, "rollout-wide")
    page.set_viewport_size(PHONE)
    screenshot(page, "rollout-phone")


def test_rejected_deliveries_are_listed_newest_first(server: TrackerProcess, page: Page) -> None:
    for n in range(3):
        refused = post(
            server.url,
            json.dumps({"n": n, **state("d-x", "upgrading")}).encode(),  # no such state
            headers={"Authorization": f"Bearer {INGEST}"},
        )
        assert refused.status == 422
    sign_in(page, server.url, "/rejected")
    rows = page.locator("#refusals tbody tr")
    expect(rows).to_have_count(3)
    ids = [int(r.get_attribute("data-rejected") or 0) for r in rows.all()]
    assert ids == sorted(ids, reverse=True)
    expect(rows.nth(0)).to_contain_text('{"n": 2, ')
    post(server.url, b"not json", headers={"Authorization": f"Bearer {INGEST}"})
    expect(rows).to_have_count(4, timeout=5_000)  # without a reload
    screenshot(page, "rejected-wide")
    page.set_viewport_size(PHONE)
    screenshot(page, "rejected-phone")


def test_sign_in_keeps_the_token_out_of_urls_and_scripts(
    server: TrackerProcess, browser: Browser
) -> None:
    page, console = open_page(browser)
    console.expected.append("/v1/session")  # the wrong tokens' 401s, on purpose
    page.goto(server.url + "/")
    expect(page.locator("form.sign-in")).to_be_visible()
    for wrong in ("not-the-token", INGEST):
        page.fill("#token", wrong)
        page.click("form.sign-in button[type=submit]")
        expect(page.locator("form.sign-in .error")).to_have_text("That is not the read token.")
    sign_in(page, server.url)
    cookies = page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        ("tracker_session", True, "Strict")
    ]
    assert READ not in cookies[0]["value"]
    assert READ not in page.url
    assert READ not in page.content()
    assert page.evaluate("document.cookie") == ""  # scripts cannot read it
    # The cookie opens the read API, and nothing else.
    assert page.request.get(server.url + "/v1/operations").status == 200
    ingest = page.request.post(
        server.url + "/v1/notifications", data=json.dumps(state("x", "idle"))
    )
    assert ingest.status == 401
    page.click("#sign-out")
    expect(page.locator("form.sign-in")).to_be_visible()
    assert page.context.cookies() == []
    assert page.request.get(server.url + "/v1/operations").status == 401
    page.context.close()
    assert console.unexpected() == []


def test_the_page_survives_a_server_restart(
    start_tracker: StartTracker, database_url: str, browser: Browser
) -> None:
    env = {
        "TRACKER_DATABASE_URL": database_url,
        "TRACKER_INGEST_TOKEN": INGEST,
        "TRACKER_READ_TOKEN": READ,
    }
    first = start_tracker(env)
    rollout(first.url)
    page, console = open_page(browser)
    console.expected += ["/v1/stream", "ERR_CONNECTION_REFUSED"]  # while it is away, on purpose
    sign_in(page, first.url)
    expect(page.locator("#live")).to_have_text("live")
    first.stop()
    expect(page.locator("#live")).to_have_text("disconnected: reconnecting…", timeout=10_000)
    second = start_tracker(env, port=first.port)
    expect(page.locator("#live")).to_have_text("live", timeout=20_000)
    bar = page.locator("#rollouts tr[data-operation='op-live'] .seg.downloading")
    notify(second.url, state("d-2", "downloaded"))
    expect(bar).to_have_attribute("data-count", "1", timeout=5_000)
    page.context.close()
    assert console.unexpected() == []


def test_pages_are_static_and_the_api_stays_closed(server: TrackerProcess) -> None:
    """The HTML carries no data and no token; without a session the API still says 401."""
    shell = request("GET", server.url + "/operations/op-live")
    assert shell.status == 200
    assert b"<main" in shell.body
    assert READ.encode() not in shell.body
    assert get(server.url, "/v1/operations").status == 401
    assert get(server.url, "/assets/dashboard.js").status == 200
    assert get(server.url, "/assets/..%2Fsession.py").status == 404
    wide, phone = WIDE, PHONE  # both widths are exercised by the screenshots above
    assert wide["width"] > phone["width"]


def test_a_finished_upgrade_posted_in_a_scrambled_order_reads_idle_and_success(
    server: TrackerProcess, page: Page
) -> None:
    """Its SUCCESS first, `downloading` last and pushed twice, as a backlog drains: the device,
    its rollout and the dashboard's reads of them say what the upgrade did."""
    scrambled = [
        result("d-s", "SUCCESS", op="op-scr"),
        state("d-s", "updating", op="op-scr"),
        state("d-s", "idle", op="op-scr"),
        state("d-s", "downloaded", op="op-scr"),
        state("d-s", "downloading", op="op-scr"),
        state("d-s", "downloading", op="op-scr"),  # the platform's retry: records nothing
    ]
    for document in scrambled:
        notify(server.url, document)
    device = api(server.url, "/v1/devices/d-s")["software"]
    assert isinstance(device, dict)
    assert (device["state"], device["version"], device["last_result"]["result"]) == (
        "idle",
        "2.0",
        "SUCCESS",
    )
    rollup = api(server.url, "/v1/operations/op-scr?track=software")
    assert (rollup["states"], rollup["results"]) == ({"idle": 1}, {"SUCCESS": 1, "FAIL": 0})
    trail = api(server.url, "/v1/devices/d-s/transitions")["items"]
    assert isinstance(trail, list)
    assert [(t["to_state"], t["applied"], t["reason"]) for t in trail] == [
        (None, True, None),  # the result, before any state
        ("updating", True, None),
        ("idle", True, None),
        ("downloaded", False, "stale"),
        ("downloading", False, "stale"),
    ]

    sign_in(page, server.url, "/devices/d-s")
    expect(page.locator("[data-track='software'] [data-field='state']")).to_have_text("idle")
    # The result and its code (an element nested in a list was once drawn "[object ...]").
    expect(page.locator("[data-track='software'] [data-field='result']")).to_have_text("SUCCESS 0")
    rows = page.locator("#timeline tbody tr[data-position]")
    expect(rows).to_have_count(5)
    expect(rows.nth(3).locator(".flag", has_text="stale")).to_have_attribute(
        "title", "its sub-operation had already gone past it: it changed nothing"
    )
    screenshot(page, "device-scrambled")
    page.goto(server.url + "/operations/op-scr?track=software")
    expect(page.locator("#states li[data-state='idle'] strong")).to_have_text("1")


def iotda_rollout(database_url: str, tmp_path: Path) -> None:
    """An IoTDA task as the reconciler records it (through `tracker import`, as an export
    carries such events): four devices in four statuses, and the platform counting one more
    success than the devices read."""
    observed = [
        ("iotda.batchtask.observed", iotda_task({**IOTDA_PROGRESS, "success": 2, "total": 5})),
        ("iotda.subtask.observed", iotda_subtask("i-1", "Waitting")),
        ("iotda.subtask.observed", iotda_subtask("i-2", "Processing")),
        ("iotda.subtask.observed", iotda_subtask("i-3", "Success")),
        ("iotda.subtask.observed", iotda_subtask("i-4", "Fail", ("E-IOT", "timed out"))),
    ]
    lines = tmp_path / "iotda.jsonl"
    lines.write_text(
        "".join(
            json.dumps({"event_type": kind, "body": json.dumps(body), "received_at": IOTDA_AT})
            + "\n"
            for kind, body in observed
        )
    )
    imported = tracker(database_url, "import", str(lines))
    assert imported.returncode == 0, imported.stderr


IOTDA_AT = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()  # half an hour ago
IOTDA_PROGRESS = {
    "total": 4,
    "processing": 1,
    "success": 1,
    "fail": 1,
    "waitting": 1,
    "fail_wait_retry": 0,
    "stopped": 0,
    "removed": 0,
}


def iotda_task(progress: dict[str, int]) -> dict[str, object]:
    return {
        "observed_at": IOTDA_AT,
        "request": "GET /v5/iot/p/batchtasks/task-iot",
        "app_id": "app-iot",
        "batchtask": {
            "task_id": "task-iot",
            "task_type": "firmwareUpgrade",
            "status": "Processing",
            "task_progress": progress,
        },
    }


def iotda_subtask(
    device: str, status: str, error: tuple[str, str] | None = None
) -> dict[str, object]:
    detail: dict[str, object] = {"target": device, "status": status}
    if error is not None:
        detail["error"] = {"error_code": error[0], "error_msg": error[1]}
    return {
        "observed_at": IOTDA_AT,
        "request": "GET /v5/iot/p/batchtasks/task-iot",
        "app_id": "app-iot",
        "task_id": "task-iot",
        "task_type": "firmwareUpgrade",
        "detail": detail,
    }


def test_an_iotda_task_shows_its_platform_its_statuses_and_its_own_counters(
    server: TrackerProcess, page: Page, database_url: str, tmp_path: Path
) -> None:
    rollout(server.url)
    iotda_rollout(database_url, tmp_path)
    op = api(server.url, "/v1/operations/task-iot")
    assert op["progress_disagrees"] is True
    sign_in(page, server.url)
    row = page.locator("#rollouts tr[data-operation='task-iot']")
    expect(row.locator(".badge")).to_have_text("IoTDA")
    expect(page.locator("#rollouts tr[data-operation='op-live'] .badge")).to_have_text(
        "OceanConnect"
    )
    shown = {
        seg.get_attribute("data-state"): int(seg.get_attribute("data-count") or 0)
        for seg in row.locator("td").nth(4).locator(".seg").all()
    }
    assert shown == op["states"] == {"Waitting": 1, "Processing": 1, "Success": 1, "Fail": 1}
    expect(row.locator("[data-progress]")).to_contain_text("Success 2")
    expect(row.locator(".flag.disagrees")).to_be_visible()
    # Its Processing was read, never pushed: a lost push, shown beside the task.
    expect(page.locator("#tasks [data-task='task-iot'] [data-unpushed]")).to_have_text(
        "never pushed: Processing"
    )
    screenshot(page, "overview-iotda")

    page.goto(server.url + "/operations/task-iot?track=firmware")
    expect(page.locator("h1 .badge")).to_have_text("IoTDA")
    expect(page.locator("[data-field='platform']")).to_have_text("IoTDA batch task")
    expect(page.locator("[data-field='task-status']")).to_have_text("Processing")
    expect(page.locator(".facts dt")).to_have_text(
        ["Platform", "Task status", "Track", "App", "Devices", "First seen", "Last active"]
    )
    expect(page.locator("#states li[data-state='FailWaitRetry'] strong")).to_have_text("0")
    expect(page.locator("#states li[data-state='Fail'] strong")).to_have_text("1")
    expect(page.locator("#progress .warning")).to_be_visible()
    differs = page.locator("#progress tr.differs")
    expect(differs).to_have_count(2)  # total and Success
    expect(page.locator("#progress tr[data-counter='Success'] td").nth(1)).to_have_text("2")
    expect(page.locator("#progress tr[data-counter='Success'] td").nth(2)).to_have_text("1")
    expect(page.locator("#failures details[data-error-code='E-IOT']")).to_contain_text("timed out")
    screenshot(page, "rollout-iotda")

    # Busy for half an hour: stuck after a minute, its members listed longest first.
    page.goto(server.url + "/operations/task-iot?track=firmware&stuck=1")
    expect(page.locator("#states [data-stuck]")).to_have_attribute("data-stuck", "2")
    expect(page.locator("#stuck tbody tr")).to_have_count(2)
    expect(page.locator("#stuck tbody tr").nth(0)).to_contain_text("Waitting")
    expect(page.locator("#stuck tbody tr").nth(1)).to_contain_text("Processing")

    page.goto(server.url + "/devices/i-4")
    expect(page.locator("#device-tasks tr[data-task='task-iot']")).to_contain_text("E-IOT")
    expect(page.locator("[data-track='firmware']")).to_contain_text("No report on this track.")
    expect(page.locator("#timeline tbody tr[data-position] .flag")).to_have_text("IoTDA")
    screenshot(page, "device-iotda")
