"""Where and how to connect, from the settings; checked before `serve` starts.

A plain broker takes its user and password from the URL (amqp://user:pass@host:5672); IoTDA
takes an access key and code (TRACKER_AMQP_ACCESS_KEY, TRACKER_AMQP_ACCESS_CODE), from which
each connection builds a fresh username (iotda.py). amqps verifies the broker's certificate and
name against the system's CAs, plus TRACKER_AMQP_CA_FILE; only --insecure-amqp-tls turns that off.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from tracker.amqp import iotda
from tracker.config import Settings

MAX_LINKS = 10  # IoTDA: at most 10 receiver links on one connection
PORTS = {"amqp": 5672, "amqps": 5671}


class Misconfigured(Exception):  # noqa: N818 - reads as "the AMQP channel is misconfigured"
    """Settings the AMQP channel cannot start with: a usage error (exit 2)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # amqp or amqps
    host: str
    port: int
    address: str  # the source: a queue name (IoTDA's DefaultQueue), /amq/queue/NAME
    links: int
    credit: int  # messages in flight per link, at most
    user: str | None  # from the URL
    password: str | None
    access_key: str | None  # IoTDA: the username is built from it per connection
    access_code: str | None
    instance_id: str | None
    ca_file: str | None
    verify: bool  # amqps: check the broker's certificate and name

    @property
    def tls(self) -> bool:
        return self.scheme == "amqps"

    @property
    def url(self) -> str:
        """Without credentials: what is connected to, and what the log names."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def credentials(self, now_ms: int) -> tuple[str | None, str | None]:
        """The SASL user and password for a connection opened now."""
        if self.access_key is not None:
            return iotda.username(self.access_key, now_ms, self.instance_id), self.access_code
        return self.user, self.password


def endpoint(settings: Settings) -> Endpoint | None:
    """The endpoint to consume from, or None when TRACKER_AMQP_URL is unset; raises
    `Misconfigured` saying what is wrong."""
    if not settings.amqp_url:
        return None
    try:
        parts = urlsplit(settings.amqp_url)
        port = parts.port
    except ValueError as error:
        raise Misconfigured(f"TRACKER_AMQP_URL is not a URL: {error}") from None
    if parts.scheme not in PORTS:
        raise Misconfigured(
            f"TRACKER_AMQP_URL must start with amqp:// or amqps://, not {parts.scheme!r}://"
        )
    if not parts.hostname:
        raise Misconfigured("TRACKER_AMQP_URL names no host")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise Misconfigured(
            "TRACKER_AMQP_URL is scheme://[user:password@]host[:port] only; the queue is "
            "TRACKER_AMQP_ADDRESS"
        )
    if not 1 <= settings.amqp_links <= MAX_LINKS:
        raise Misconfigured(
            f"--amqp-links (TRACKER_AMQP_LINKS) is {settings.amqp_links}; it must be 1 to "
            f"{MAX_LINKS} (IoTDA's limit of receiver links on one connection)"
        )
    if settings.amqp_credit < 1:
        raise Misconfigured(f"TRACKER_AMQP_CREDIT is {settings.amqp_credit}; at least 1")
    if not settings.amqp_address.strip():
        raise Misconfigured("TRACKER_AMQP_ADDRESS is empty")
    _check_iotda(settings, parts.username is not None)
    if settings.amqp_ca_file and not os.access(settings.amqp_ca_file, os.R_OK):
        raise Misconfigured(f"TRACKER_AMQP_CA_FILE {settings.amqp_ca_file!r} cannot be read")
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or PORTS[parts.scheme],
        address=settings.amqp_address,
        links=settings.amqp_links,
        credit=settings.amqp_credit,
        user=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        access_key=settings.amqp_access_key,
        access_code=settings.amqp_access_code,
        instance_id=settings.amqp_instance_id,
        ca_file=settings.amqp_ca_file,
        verify=not settings.insecure_amqp_tls,
    )


def _check_iotda(settings: Settings, user_in_url: bool) -> None:
    key, code = settings.amqp_access_key, settings.amqp_access_code
    if (key is None) != (code is None):
        missing = "TRACKER_AMQP_ACCESS_CODE" if code is None else "TRACKER_AMQP_ACCESS_KEY"
        raise Misconfigured(f"IoTDA's credentials come in pairs: {missing} is unset")
    if key is None:
        if settings.amqp_instance_id is not None:
            raise Misconfigured("TRACKER_AMQP_INSTANCE_ID is set without TRACKER_AMQP_ACCESS_KEY")
        return
    if user_in_url:
        raise Misconfigured(
            "TRACKER_AMQP_URL carries a user and TRACKER_AMQP_ACCESS_KEY is set: give one"
        )
    try:
        iotda.username(key, 0, settings.amqp_instance_id)
    except iotda.BadCredential as error:
        raise Misconfigured(str(error)) from None


def check_client(endpoint: Endpoint) -> None:
    """Raise `Misconfigured` unless the AMQP client can reach `endpoint`: installed (an
    optional extra), and able to speak TLS when the URL asks for it."""
    try:
        import proton  # noqa: PLC0415 - only when the channel is configured
    except ImportError:
        raise Misconfigured(
            "TRACKER_AMQP_URL is set but the AMQP client is not installed: "
            "pip install 'tracker[amqp]' (python-qpid-proton)"
        ) from None
    if endpoint.tls and not proton.SSL.present():
        raise Misconfigured(
            "python-qpid-proton was built without TLS, and the URL is amqps://: install "
            "OpenSSL's headers and pkg-config (apt-get install libssl-dev pkg-config), then "
            "pip install --force-reinstall --no-cache-dir python-qpid-proton"
        )
