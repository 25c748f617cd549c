"""Settings: read once from TRACKER_* variables, overridable by CLI flags, then frozen.

Each setting is declared once, here: its variable is TRACKER_<NAME>, and one that a flag also
sets says so (`Flag`), so the command line is built from these declarations (cli/flags.py) and
`serve --workers N` hands every worker the supervisor's settings, however each was given
(`environment`). README.md's settings table is held to them by tests/unit/test_config.py.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

MIB = 1024 * 1024
LOOPBACK = "127.0.0.1"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - a callback server must be reachable by the platform


@dataclass(frozen=True, slots=True)
class Flag:
    """The flag that also sets a setting: `--<its name, with dashes>`, given to every command
    (`every`) or to `tracker serve` alone. Its help says what it sets and names the variable."""

    help: str
    commands: Literal["every", "serve"] = "serve"
    metavar: str | None = None


def flag(
    help: str,  # noqa: A002 - argparse's word for it
    commands: Literal["every", "serve"] = "serve",
    metavar: str | None = None,
) -> dict[str, Flag]:
    """A setting's `field` metadata: the flag that sets it too."""
    return {"flag": Flag(help, commands, metavar)}


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = field(  # unset: an embedded PostgreSQL under data_dir
        default=None,
        metadata=flag(
            "PostgreSQL URL (env TRACKER_DATABASE_URL); unset: embedded PostgreSQL in --data-dir",
            "every",
        ),
    )
    data_dir: Path = field(
        default=Path(".tracker"),
        metadata=flag("embedded PostgreSQL's home (env TRACKER_DATA_DIR, ./.tracker)", "every"),
    )
    host: str | None = field(  # None: every address with both tokens set, else loopback only
        default=None,
        metadata=flag(
            "address to listen on (env TRACKER_HOST; default: 0.0.0.0 with both tokens set, "
            "else 127.0.0.1 only)"
        ),
    )
    port: int = field(default=8080, metadata=flag("port to listen on (env TRACKER_PORT, 8080)"))
    ingest_token: str | None = None
    read_token: str | None = None
    metrics_token: str | None = None  # reads /metrics only (the read token does too)
    admin_token: str | None = None  # writes guards (issue 25); unset: nobody can
    checkpoint_key: str | None = None  # signs `tracker checkpoint`s; keep it off the database
    insecure_open: bool = field(  # listen beyond loopback without both tokens, on purpose
        default=False,
        metadata=flag(
            "listen beyond loopback although a token is unset: anyone who can reach the port "
            "can post or read (env TRACKER_INSECURE_OPEN=1)"
        ),
    )
    # Behind a proxy we trust: the scheme from X-Forwarded-Proto (the session cookie keeps
    # Secure behind TLS ended there), the client from X-Forwarded-For (last hop). Off: ignored.
    trust_proxy: bool = field(
        default=False,
        metadata=flag(
            "behind a reverse proxy that ends TLS: take the scheme from X-Forwarded-Proto (so "
            "the session cookie keeps Secure) and the client address from X-Forwarded-For (last "
            "hop); without it both headers are ignored (env TRACKER_TRUST_PROXY=1)"
        ),
    )
    allow_unsafe_durability: bool = field(  # serve on fsync=off or synchronous_commit=off
        default=False,
        metadata=flag(
            "serve although the database runs with fsync=off or synchronous_commit=off, where "
            "a crash of it loses commits already answered 200 (env "
            "TRACKER_ALLOW_UNSAFE_DURABILITY=1; a test bench only)"
        ),
    )
    max_body_bytes: int = field(
        default=MIB, metadata=flag("largest accepted body (env TRACKER_MAX_BODY_BYTES, 1 MiB)")
    )
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
    workers: int = field(  # server processes sharing the port (`serve --workers N`)
        default=1, metadata=flag("server processes sharing the port (env TRACKER_WORKERS, 1)")
    )
    # Set by `serve --workers` for its workers (several processes bind the same port): an
    # internal setting, not one for operators (INTERNAL, below).
    reuse_port: bool = False
    # Unset: INFO for `serve` and `migrate`, WARNING for the commands people read with.
    log_level: str = field(
        default="INFO", metadata=flag("DEBUG, INFO, WARNING... (env TRACKER_LOG_LEVEL)", "every")
    )
    # Both set: serve HTTPS (the platforms push over HTTPS in production). PEM files.
    tls_cert: str | None = field(  # the certificate chain
        default=None,
        metadata=flag(
            "serve HTTPS with this certificate chain (env TRACKER_TLS_CERT)", metavar="PEM"
        ),
    )
    tls_key: str | None = field(  # its private key
        default=None,
        metadata=flag("the certificate's private key (env TRACKER_TLS_KEY)", metavar="PEM"),
    )

    # IoTDA's AMQP 1.0 queue (DESIGN.md, "AMQP channel"): set, `serve` consumes it too. The URL
    # may carry a broker's user and password (amqp://user:pass@host:5672), hence no flag: a
    # flag's value shows in `ps`. IoTDA: amqps://<its AMQP host>:5671 and the three below.
    amqp_url: str | None = None
    amqp_address: str = "DefaultQueue"  # the queue; RabbitMQ's 1.0 plugin: /amq/queue/NAME
    amqp_access_key: str | None = None  # IoTDA: the SASL username is built from it per connection
    amqp_access_code: str | None = None  # IoTDA: the SASL password
    amqp_instance_id: str | None = None  # IoTDA: where the region needs it in the username
    amqp_ca_file: str | None = None  # a CA to trust beyond the system's (PEM)
    amqp_links: int = field(  # receiver links on the connection (IoTDA allows 10)
        default=1,
        metadata=flag("AMQP receiver links on the one connection, 1-10 (env TRACKER_AMQP_LINKS)"),
    )
    # Messages each link may have in flight, unsettled: what memory holds at most, however long
    # the queue's backlog, and enough to fill the group commit's batches.
    amqp_credit: int = 500
    insecure_amqp_tls: bool = field(  # amqps without checking the broker's certificate
        default=False,
        metadata=flag(
            "connect to amqps:// without verifying the broker's certificate or name: anyone "
            "on the path can read and forge notifications (env TRACKER_INSECURE_AMQP_TLS=1)"
        ),
    )
    # IoTDA's API, for each device's part of an upgrade task (DESIGN.md, "IoTDA reconciliation";
    # tracker/iotda/): with the endpoint and both keys set, `serve` reconciles in the background.
    # No flags: the keys would show in `ps`.
    iotda_endpoint: str | None = None  # https://iotda.<region>.myhuaweicloud.com, or an instance's
    iotda_project_id: str | None = None
    iotda_ak: str | None = None
    iotda_sk: str | None = None
    iotda_instance_id: str | None = None  # sent as Instance-Id, where the edition needs it
    iotda_region: str | None = None  # an instance's own endpoint: its region id (derived signing)
    # Comma-separated: whose tasks ListBatchTasks finds; unset: every application's.
    iotda_app_ids: str | None = None
    # Requests a second to the API: IoTDA throttles per tenant, and the tracker shares the budget
    # with whatever else the tenant runs.
    iotda_rate: float = 5.0
    # Webhooks (tracker/webhooks/): unset, any host whose every address is public; set
    # (comma-separated names or addresses), only those hosts, whatever their addresses.
    webhook_hosts: str | None = None
    webhook_timeout: float = 10.0  # seconds for one delivery, connecting to the answer's end
    webhook_give_up: float = 86400.0  # seconds after a change when its delivery is dead
    # Seconds between two passes of the guards' clock (tracker/alerts/clock.py): how late a
    # stuck or silent alert may fire.
    guard_clock: float = 10.0

    def __post_init__(self) -> None:
        # As logging names levels, however given ("debug" from a flag, a variable, a test).
        object.__setattr__(self, "log_level", self.log_level.upper())

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **defaults: object) -> Settings:
        """Build from TRACKER_<FIELD> variables; empty values count as unset. `defaults`: a
        command's own, which the environment overrides (as flags then override both)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = dict(defaults)
        for spec in fields(cls):
            raw = env.get(variable(spec.name), "").strip()
            if raw:
                values[spec.name] = _convert(spec, raw)
        return cls(**values)

    def environment(self) -> dict[str, str]:
        """Every setting as the TRACKER_* variable that `from_env` reads back to the same value:
        how `serve --workers` passes its settings on, flags included."""
        return {variable(spec.name): _text(getattr(self, spec.name)) for spec in fields(self)}

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


INTERNAL = frozenset({"reuse_port"})  # set by tracker for itself; no operator sets them


def variable(name: str) -> str:
    """The environment variable of a setting."""
    return f"TRACKER_{name.upper()}"


def flags() -> list[tuple[Field[Any], Flag]]:
    """Every setting a flag also sets, with its flag, in declaration order."""
    return [(spec, spec.metadata["flag"]) for spec in fields(Settings) if "flag" in spec.metadata]


def kind_of(spec: Field[Any]) -> type:
    """What a setting's text converts to: the type of its default (text when that is None)."""
    return str if spec.default is None else type(spec.default)


def _text(value: object) -> str:
    """A setting's value as its variable's text (unset or off: empty, which reads as unset)."""
    if value is None or value is False:
        return ""
    return "1" if value is True else str(value)


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
TOKENS = ("ingest_token", "read_token", "metrics_token", "admin_token")


class ShortToken(Exception):  # noqa: N818 - reads as "a token is too short"
    """A token set shorter than MIN_TOKEN_LENGTH."""


class SharedToken(Exception):  # noqa: N818 - reads as "a token is shared"
    """The admin token set to the value of another token."""


# How a refusal tells the operator to make a good token.
RECIPE = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def refuse_short_tokens(settings: Settings) -> None:
    """Raise `ShortToken` naming the first token set but shorter than MIN_TOKEN_LENGTH, then
    `SharedToken` if the admin token is another token too (`create_app` and `serve` call this
    one check; its name is older than its second half)."""
    for name in TOKENS:
        token = getattr(settings, name)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ShortToken(
                f"TRACKER_{name.upper()} is {len(token)} characters long; every token must be "
                f"at least {MIN_TOKEN_LENGTH} (for one: {RECIPE})"
            )
    _refuse_a_shared_admin_token(settings)


def _refuse_a_shared_admin_token(settings: Settings) -> None:
    """Every other token may travel in a URL (`?token=`; the ingest token does, in the
    platform's callback URL), where the admin token is never taken (http/auth.py): were it
    another token too, that URL would write guards. The message names settings, not values."""
    admin = settings.admin_token
    for name in (name for name in TOKENS if name != "admin_token"):
        if admin is not None and getattr(settings, name) == admin:
            raise SharedToken(
                f"TRACKER_ADMIN_TOKEN is the same as {variable(name)}: whoever holds that "
                "token, or any URL that carries it, could write guards; give the admin token a "
                f"value of its own (for one: {RECIPE})"
            )
    # Likewise the ingest token, in the platform's callback URL, must read nothing.
    if settings.ingest_token is not None and settings.ingest_token == settings.read_token:
        raise SharedToken(
            "TRACKER_INGEST_TOKEN is the same as TRACKER_READ_TOKEN: the platform's callback URL "
            f"carries it, and would read every body and state; give each its own (for one: "
            f"{RECIPE})"
        )


def _convert(spec: Field[Any], raw: str) -> object:
    """A variable's text as its setting's kind (as a flag's text is converted: cli/flags.py)."""
    kind = kind_of(spec)
    if kind is bool:
        return raw.lower() in {"1", "true", "yes", "on"}
    try:
        return kind(raw)
    except ValueError:
        raise SystemExit(f"{variable(spec.name)}={raw!r} is not a valid {kind.__name__}") from None
