"""HTTPS: `tracker serve --tls-cert --tls-key` serves the same API over TLS (the platforms push
over HTTPS in production), tested with a self-signed certificate and real processes."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import aiohttp
import pytest

from testkit.server import TrackerProcess

SW_STATE = "oceanconnect-swUpgradeStateChangeNotify"


class StartHttps(Protocol):
    def __call__(
        self, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> TrackerProcess: ...


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate[0]))


@pytest.fixture
def https_tracker(
    database_url: str, certificate: tuple[Path, Path], trusting: ssl.SSLContext, tmp_path: Path
) -> Iterator[StartHttps]:
    started: list[TrackerProcess] = []

    def start(args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> TrackerProcess:
        cert, key = certificate
        env = {"TRACKER_DATABASE_URL": database_url, **(env or {})}
        tls_args = ("--tls-cert", str(cert), "--tls-key", str(key))
        process = TrackerProcess(
            env, tmp_path / f"tls-{len(started)}.log", args=tls_args + args, tls=trusting
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.close()


@pytest.mark.parametrize("args", [(), ("--workers", "2")], ids=["one process", "two workers"])
async def test_the_api_is_served_over_https(
    https_tracker: StartHttps,
    trusting: ssl.SSLContext,
    examples: dict[str, bytes],
    args: tuple[str, ...],
) -> None:
    server = https_tracker(args)
    assert server.url.startswith("https://")
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{server.url}/v1/notifications", data=examples[SW_STATE], ssl=trusting
        ) as response:
            assert response.status == 200, await response.text()
            device = (await response.json())["stream_id"]
        async with session.get(f"{server.url}/v1/devices/{device}", ssl=trusting) as response:
            assert response.status == 200
            assert (await response.json())["software"]["state"] == "downloading"


async def test_the_dashboard_session_cookie_is_secure_under_tls(
    https_tracker: StartHttps, trusting: ssl.SSLContext
) -> None:
    tokens = {
        "TRACKER_INGEST_TOKEN": "tls-ingest-token-01",
        "TRACKER_READ_TOKEN": "tls-read-token-0001",
    }
    server = https_tracker(env=tokens)
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.url}/v1/session", json={"token": "tls-read-token-0001"}, ssl=trusting
        ) as response,
    ):
        assert response.status == 200
        cookie = response.cookies["tracker_session"]
    assert cookie["secure"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"


async def test_plain_http_and_untrusting_clients_get_nothing(
    https_tracker: StartHttps, trusting: ssl.SSLContext, examples: dict[str, bytes]
) -> None:
    server = https_tracker()
    plain = server.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as session:
        # Cleartext is no TLS handshake: the connection is closed without a byte of answer.
        with pytest.raises(aiohttp.ServerDisconnectedError):
            async with session.post(f"{plain}/v1/notifications", data=examples[SW_STATE]):
                pass
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with session.get(f"{server.url}/healthz"):  # default trust: self-signed fails
                pass
        async with session.get(f"{server.url}/v1/events", ssl=trusting) as response:
            assert response.status == 200
            assert (await response.json())["items"] == []  # the cleartext delivery is not logged


def test_a_certificate_without_its_key_is_refused_at_start(
    certificate: tuple[Path, Path], database_url: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracker",
            "serve",
            "--port",
            "0",
            "--tls-cert",
            str(certificate[0]),
        ],
        env={**os.environ, "TRACKER_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2  # a usage error, as README's exit codes say
    assert done.stderr.splitlines()[-1] == (  # one line saying why, after the start's log
        "tracker serve: TLS needs both --tls-cert and --tls-key (TRACKER_TLS_CERT, TRACKER_TLS_KEY)"
    )
