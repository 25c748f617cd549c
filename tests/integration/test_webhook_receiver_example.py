"""The receiver README points people at (docs/webhook_receiver.py) checks what a receiver
must: the signature over the exact body, a fresh timestamp, and each change once; with the
tracker's own signing (tracker/webhooks/signing.py) it accepts exactly what the tracker sends."""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path
from types import ModuleType

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tracker.webhooks.signing import headers

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "webhook_receiver.py"
SECRET = b"whsec-example-0123456789"
CHANGE = {
    "id": "g:op-1:software:1",
    "guard": "g",
    "operation_id": "op-1",
    "track": "software",
    "state": "firing",
    "value": 3.0,
    "threshold": 2.0,
    "at": "2026-12-07T10:00:00Z",
}


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("webhook_receiver", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_receiver_checks_signature_time_and_repeats(
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = TestClient(TestServer(example().application(SECRET), host="127.0.0.1"))
    await client.start_server()
    try:
        body = json.dumps(CHANGE).encode()
        signed = headers(SECRET, body, time.time())
        assert (await client.post("/hook", data=body, headers=signed)).status == 200
        again = await client.post("/hook", data=body, headers=headers(SECRET, body, time.time()))
        assert (again.status, await again.text()) == (200, "seen before")
        forged = headers(b"another-secret-entirely", body, time.time())
        assert (await client.post("/hook", data=body, headers=forged)).status == 401
        tampered = body.replace(b"3.0", b"1.0")
        assert (await client.post("/hook", data=tampered, headers=signed)).status == 401
        stale = headers(SECRET, body, time.time() - 301)
        assert (await client.post("/hook", data=body, headers=stale)).status == 401
        assert (await client.post("/hook", data=body)).status == 401
    finally:
        await client.close()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "FIRING g on op-1 (software): 3 against 2 at 2026-12-07T10:00:00Z [g:op-1:software:1]",
        "again (ignored): g:op-1:software:1",
    ]
