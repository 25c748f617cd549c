"""Settings: read once from TRACKER_* variables, overridable by CLI flags, then frozen."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
LOOPBACK = "127.0.0.1"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - a callback server must be reachable by the platform


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None  # unset: an embedded PostgreSQL under data_dir
    data_dir: Path = Path(".tracker")
    host: str | None = None  # None: every address with both tokens set, else loopback only
    port: int = 8080
    ingest_token: str | None = None
    read_token: str | None = None
    metrics_token: str | None = None  # reads /metrics only (the read token does too)
    checkpoint_key: str | None = None  # signs `tracker checkpoint`s; keep it off the database
    insecure_open: bool = False  # listen beyond loopback without both tokens, on purpose
    # Behind a proxy we trust: the scheme from X-Forwarded-Proto (the session cookie keeps
    # Secure behind TLS ended there), the client from X-Forwarded-For (last hop). Off: ignored.
    trust_proxy: bool = False
    allow_unsafe_durability: bool = False  # serve on fsync=off or synchronous_commit=off
    max_body_bytes: int = MIB
    rejected_prefix_bytes: int = 64 * 1024  # of a refused body, kept (with its size and SHA-256)
    # Bodies of no type we project are logged whole: bounded in size, and per ingest token per
    # UTC day (kept in the database, so shared by every process), or the log fills for ever.
    unrecognised_max_bytes: int = 16 * 1024  # real notifications are under 2 KiB
    unrecognised_daily_bytes: int = 64 * MIB
    # Every database call is bounded so the platform gets a 503 well inside its 15 s patience.
    db_timeout: float = 5.0
    # A body must arrive whole within this many seconds of its headers (else 408; 0: no limit):
    # a client that dribbles it byte by byte must not hold a connection and a handler for ever.
    body_timeout: float = 10.0
    # A connection must finish a request's headers within this many seconds of opening or of its
    # previous answer, and an idle keep-alive connection is closed then: held sockets come back.
    header_timeout: float = 15.0
    # Open connections per process, at most; one more is answered 503 and closed at once. The
    # process's open-file limit is raised to allow it (or the cap lowered below that limit).
    max_connections: int = 1000
    pool_size: int = 10
    # Live feeds (GET /v1/stream) per process, at most; they read through their own pool of
    # `feed_pool_size` connections, so followers never take the connections ingestion needs.
    stream_clients: int = 100
    feed_pool_size: int = 2
    start_timeout: float = 30.0  # how long `serve` waits for the database at start
    shutdown_grace: float = 10.0
    workers: int = 1  # server processes sharing the port (`serve --workers N`)
    reuse_port: bool = False  # set for workers: several processes bind the same port
    log_level: str = "INFO"
    # Both set: serve HTTPS (the platforms push over HTTPS in production). PEM files.
    tls_cert: str | None = None  # the certificate chain
    tls_key: str | None = None  # its private key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build from TRACKER_<FIELD> variables; empty values count as unset."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = env.get(f"TRACKER_{spec.name.upper()}", "").strip()
            if raw:
                values[spec.name] = _convert(spec.name, raw, spec.default)
        return cls(**values)

    @property
    def closed(self) -> bool:
        """Both tokens set: nobody without one can post or read."""
        return self.ingest_token is not None and self.read_token is not None

    def listen_address(self) -> str:
        """Where `serve` listens: closed by default. Without both tokens, loopback only, unless
        asked otherwise on purpose (`insecure_open`); raises `Exposed` if asked by mistake."""
        if not self.host:  # unset, or given empty (as the environment counts it)
            return EVERYWHERE if self.closed else LOOPBACK
        if self.closed or self.insecure_open or is_loopback(self.host):
            return self.host
        unset = [
            name
            for name, value in (
                ("TRACKER_INGEST_TOKEN", self.ingest_token),
                ("TRACKER_READ_TOKEN", self.read_token),
            )
            if value is None
        ]
        raise Exposed(
            f"refusing to listen on {self.host} with {' and '.join(unset)} unset: anyone who "
            f"can reach it could post or read; set both tokens, listen on {LOOPBACK}, or pass "
            "--insecure-open (TRACKER_INSECURE_OPEN=1) if that is what you want"
        )

    def with_overrides(self, **overrides: object) -> Settings:
        """Apply CLI flags that were given (None means the flag was not given)."""
        given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given)


class Exposed(Exception):  # noqa: N818 - reads as "the server would be exposed"
    """Asked to listen beyond loopback without both tokens, and not on purpose."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere


MIN_TOKEN_LENGTH = 16  # characters: guessing must be hopeless, not merely slowed
TOKENS = ("ingest_token", "read_token", "metrics_token")


class ShortToken(Exception):  # noqa: N818 - reads as "a token is too short"
    """A token set shorter than MIN_TOKEN_LENGTH."""


def refuse_short_tokens(settings: Settings) -> None:
    """Raise `ShortToken` naming the first token set but shorter than MIN_TOKEN_LENGTH."""
    for name in TOKENS:
        token = getattr(settings, name)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ShortToken(
                f"TRACKER_{name.upper()} is {len(token)} characters long; every token must be "
                f"at least {MIN_TOKEN_LENGTH} (for one: python3 -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )


def _convert(name: str, raw: str, default: object) -> object:
    try:
        if isinstance(default, bool):
            return raw.lower() in {"1", "true", "yes", "on"}
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError:
        kind = type(default).__name__
        raise SystemExit(f"TRACKER_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw
