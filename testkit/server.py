"""A real `tracker serve` process on a real port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TrackerProcess:
    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        args: tuple[str, ...] = (),
        tls: ssl.SSLContext | None = None,  # a client context that trusts the server's cert
    ) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> TrackerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own command, no shell
                [
                    sys.executable,
                    "-m",
                    "tracker",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *self.args,
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"tracker exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(  # noqa: S310 - our own server's URL
                    f"{self.url}/healthz", timeout=1, context=self.tls
                ) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"tracker did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process is None:
            raise RuntimeError("not started")
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self, grace: float = 30) -> None:
        """End it as an operator would, at the end of a test: SIGTERM, so a `--workers`
        supervisor stops its workers and the last process on an embedded PostgreSQL stops that
        too (SIGKILL left both running after pytest); SIGKILL only if it will not go."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.stop(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
