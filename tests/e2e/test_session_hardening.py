"""`tracker serve` refuses short tokens, and behind `--trust-proxy` its workers set Secure
cookies and agree on sessions: what an operator sees of the hardened sign-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from tests.e2e.conftest import StartTracker
from tracker.http.session import COOKIE

INGEST, READ = "ingest-token-served-hardened", "read-token-served-hardened"


@pytest.mark.parametrize("setting", ["INGEST", "READ", "METRICS"])
def test_serve_refuses_a_token_shorter_than_16_characters(setting: str, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    tokens = {"TRACKER_INGEST_TOKEN": INGEST, "TRACKER_READ_TOKEN": READ}
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        env={**clean, **tokens, f"TRACKER_{setting}_TOKEN": "fifteen-chars-x"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"tracker serve: TRACKER_{setting}_TOKEN is 15 characters long; ")
    assert "at least 16" in line
    assert not (tmp_path / "pgdata").exists()  # refused before anything started


def call(
    method: str, url: str, body: dict[str, str] | None = None, cookie: str | None = None
) -> tuple[int, SimpleCookie]:
    """One request on a connection of its own (so the workers take turns), as if through a
    proxy that ended TLS."""
    headers = {"Content-Type": "application/json", "X-Forwarded-Proto": "https"}
    if cookie is not None:
        headers["Cookie"] = f"{COOKIE}={cookie}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, SimpleCookie(response.headers.get("Set-Cookie", ""))
    except urllib.error.HTTPError as error:
        return error.code, SimpleCookie()


def test_workers_behind_a_trusted_proxy_set_secure_cookies_and_agree_on_sign_out(
    start_tracker: StartTracker, database_url: str
) -> None:
    tracker = start_tracker(
        {
            "TRACKER_DATABASE_URL": database_url,
            "TRACKER_INGEST_TOKEN": INGEST,
            "TRACKER_READ_TOKEN": READ,
        },
        args=("--workers", "2", "--trust-proxy"),
    )
    signed = [call("POST", f"{tracker.url}/v1/session", {"token": READ}) for _ in range(6)]
    assert [status for status, _ in signed] == [200] * 6
    assert all(jar[COOKIE]["secure"] for _, jar in signed)  # whichever worker answered
    cookie = signed[0][1][COOKIE].value
    reads = [call("GET", f"{tracker.url}/v1/events", cookie=cookie)[0] for _ in range(10)]
    assert reads == [200] * 10
    assert call("DELETE", f"{tracker.url}/v1/session", cookie=cookie)[0] == 200
    reads = [call("GET", f"{tracker.url}/v1/events", cookie=cookie)[0] for _ in range(10)]
    assert reads == [401] * 10  # whichever worker answers, the copied cookie is dead
    assert tracker.stop() == 0
