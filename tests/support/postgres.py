"""Test-only PostgreSQL helpers; the server and its databases come from testkit.postgres."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def as_role(url: str, role: str, password: str) -> str:
    """`url`, logging in as `role` instead."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


def docker_answers() -> bool:
    """Whether a container engine answers here (then the tests' PostgreSQL is a container)."""
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        # docker has no inline types, and types-docker is not installed: mypy cannot check it.
        import docker  # type: ignore[import-untyped]  # noqa: PLC0415

        docker.from_env(timeout=3).ping()
    except Exception:  # noqa: BLE001 - any failure means "no engine here"
        return False
    return True
