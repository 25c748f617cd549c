"""Where a webhook may go: the guard against the tracker being used to reach inside its network.

A guard's URL comes from whoever holds the admin token, and the tracker usually runs next to
things that must not be reached from outside (the database, cloud metadata at 169.254.169.254,
admin consoles on loopback). So (DESIGN.md, "Guards and alerts"):

- only `http` and `https`;
- with `TRACKER_WEBHOOK_HOSTS` set (comma-separated names or addresses), only those hosts,
  whatever they resolve to: the operator named them;
- unset, only a host whose *every* address is public (`public`): no loopback, private,
  link-local, multicast, reserved, unspecified or shared range, also when embedded in an IPv6
  address (IPv4-mapped, NAT64, 6to4, Teredo).

The URL is checked when a guard is written (`check`) and again at each delivery: a name's
addresses may change between the two (DNS rebinding). At delivery the connection goes only to
the addresses just checked: `GuardedResolver` is the HTTP client's only resolver, checks what
it resolves and hands back exactly that, so no second lookup can answer differently. An address
literal never reaches a resolver, so `check_literal` is the deliverer's check for those.
Redirects are not followed (the deliverer sends with `allow_redirects=False`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name's addresses, as text: the system's resolver, or a test's.
Lookup = Callable[[str], Awaitable[list[str]]]

SCHEMES = frozenset({"http", "https"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):  # noqa: N818 - reads as "the target is refused"
    """A webhook URL the policy does not allow; the message says why, for people."""


def allowed_hosts(setting: str | None) -> frozenset[str] | None:
    """TRACKER_WEBHOOK_HOSTS as a set of hosts in the form `_host_of` gives; None when unset."""
    if setting is None or not setting.strip():
        return None
    return frozenset(_normal(host) for host in setting.split(",") if host.strip())


def public(address: Address) -> bool:
    """Whether `address`, and any IPv4 address embedded in it, is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # it is that IPv4 address (before Python 3.13,
            return public(address.ipv4_mapped)  # `is_private` does not look inside)
        embedded = address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]  # the client's address
        if embedded is not None and not public(embedded):
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def host_of(url: str) -> str:
    """The URL's host, normalised; raises `Refused` for anything but an http(s) URL with one."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as error:
        raise Refused(f"not a URL: {error}") from None
    if parsed.scheme not in SCHEMES:
        raise Refused(f"only http and https webhooks are allowed, not {parsed.scheme or 'none'!r}")
    if not parsed.host:
        raise Refused("the webhook URL names no host")
    return _normal(parsed.host)


def check_literal(host: str, allowed: frozenset[str] | None) -> bool:
    """For a host already normalised: raise `Refused` if the policy forbids it without a
    lookup; True when no lookup is needed (allow-listed, or an allowed address literal)."""
    if allowed is not None:
        if host not in allowed:
            raise Refused(f"{host} is not in TRACKER_WEBHOOK_HOSTS")
        return True
    address = _address(host)
    if address is None:
        return False
    _refuse_unless_public(host, address)
    return True


async def check(url: str, allowed: frozenset[str] | None, lookup: Lookup | None = None) -> None:
    """Raise `Refused` unless a webhook may POST to `url` (at creation, and at delivery)."""
    host = host_of(url)
    if not check_literal(host, allowed):
        await checked_addresses(host, lookup or system_lookup)


async def checked_addresses(host: str, lookup: Lookup) -> list[str]:
    """`host`'s addresses, every one of them public, or `Refused`."""
    try:
        found = await lookup(host)
    except OSError as error:
        raise Refused(f"{host} does not resolve: {error}") from None
    if not found:
        raise Refused(f"{host} does not resolve")
    for text in found:
        address = _address(text)
        if address is None:
            raise Refused(f"{host} resolves to {text!r}, not an address")
        _refuse_unless_public(host, address)
    return found


async def system_lookup(host: str) -> list[str]:
    """The system resolver's addresses for `host`, each once, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedResolver(AbstractResolver):
    """The deliverer's HTTP client resolves through this alone: a name's addresses are checked
    and exactly those are connected to (an allow-listed name: whatever it resolves to)."""

    def __init__(self, allowed: frozenset[str] | None, lookup: Lookup | None = None) -> None:
        self.allowed = allowed
        self.lookup = lookup or system_lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = _normal(host)
        if check_literal(name, self.allowed):
            found = await self.lookup(name) if _address(name) is None else [name]
        else:
            found = await checked_addresses(name, self.lookup)
        results = [_result(host, text, port) for text in found]
        wanted = [result for result in results if family in {socket.AF_UNSPEC, result["family"]}]
        if not wanted:
            raise OSError(f"{host} has no address of family {family!r}")
        return wanted

    async def close(self) -> None:
        """Nothing held."""


def _result(host: str, text: str, port: int) -> ResolveResult:
    address = ipaddress.ip_address(text)
    return {
        "hostname": host,
        "host": text,
        "port": port,
        "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }


def _refuse_unless_public(host: str, address: Address) -> None:
    if not public(address):
        shown = host if host == str(address) else f"{host} ({address})"
        raise Refused(
            f"{shown} is not a public address (loopback, private, link-local or reserved); "
            "name it in TRACKER_WEBHOOK_HOSTS to allow it"
        )


def _address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def _normal(host: str) -> str:
    """A host as compared: lower case, no brackets or trailing dot, an address in its
    canonical text (so `::0001` and `::1` are one host)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    address = _address(name)
    return str(address) if address is not None and "%" not in name else name
