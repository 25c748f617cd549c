"""Where a webhook may go (tracker/webhooks/targets.py): http(s) only; by default only hosts
whose every address is public; with an allow-list, exactly its hosts. A name is judged by what it
resolves to, at creation and again at delivery, where the resolver hands the connection only
the addresses it checked (so a rebinding name cannot slip a private address in between)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from tracker.webhooks.targets import (
    GuardedResolver,
    Lookup,
    Refused,
    allowed_hosts,
    check,
    public,
)

REFUSED_BY_DEFAULT = [
    "http://127.0.0.1/hook",
    "http://127.8.9.10:8080/hook",
    "http://[::1]/hook",
    "http://localhost/hook",  # resolves to loopback
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",  # cloud metadata: link-local
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",  # unique local
    "http://100.64.0.1/hook",  # shared address space (carrier NAT)
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://240.0.0.1/hook",  # reserved
    "http://255.255.255.255/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://[::ffff:10.0.0.1]/hook",  # IPv4-mapped private
    "http://[64:ff9b::a00:1]/hook",  # NAT64 of 10.0.0.1
    "http://[2002:a00:1::]/hook",  # 6to4 of 10.0.0.1
    "http://192.0.2.1/hook",  # documentation
]


def static(table: dict[str, list[str]]) -> Lookup:
    async def lookup(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return lookup


@pytest.mark.parametrize("url", REFUSED_BY_DEFAULT)
async def test_non_public_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(Refused, match="not a public address"):
        await check(url, None, static({"localhost": ["127.0.0.1", "::1"]}))


@pytest.mark.parametrize(
    "url", ["https://203.0.113.9.nip.io/hook", "https://8.8.8.8/hook", "http://[2606:4700::1]/"]
)
async def test_public_addresses_are_allowed_by_default(url: str) -> None:
    await check(url, None, static({"203.0.113.9.nip.io": ["93.184.215.14"]}))


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/hook", "file:///etc/passwd", "gopher://x/", "//x"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(Refused, match=r"only http and https|names no host"):
        await check(url, None, static({}))
    with pytest.raises(Refused):
        await check(url, allowed_hosts("x,8.8.8.8"), static({}))


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    lookup = static({"hooks.example.com": ["10.0.0.5"], "mixed.example.com": ["8.8.8.8", "::1"]})
    with pytest.raises(Refused, match=r"hooks\.example\.com \(10\.0\.0\.5\) is not a public"):
        await check("https://hooks.example.com/x", None, lookup)
    with pytest.raises(Refused, match="::1"):  # every address must be public
        await check("https://mixed.example.com/x", None, lookup)
    with pytest.raises(Refused, match="does not resolve"):
        await check("https://nowhere.example.com/x", None, lookup)


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:9999/hook"),
        (" 10.0.0.5 , hooks.internal ", "http://hooks.internal/hook"),
        ("::1", "http://[::1]/hook"),
        ("::0001", "http://[::1]/hook"),  # the same address however spelled
        ("HOOKS.internal", "http://hooks.INTERNAL./hook"),
        ("169.254.169.254", "http://169.254.169.254/"),  # named: the operator's choice
    ],
)
async def test_an_allow_list_allows_exactly_its_hosts(setting: str, url: str) -> None:
    allowed = allowed_hosts(setting)
    await check(url, allowed, static({"hooks.internal": ["10.0.0.7"]}))
    with pytest.raises(Refused, match="not in TRACKER_WEBHOOK_HOSTS"):
        await check("https://8.8.8.8/hook", allowed, static({}))  # even a public one


def test_an_empty_allow_list_is_unset() -> None:
    assert allowed_hosts(None) is None
    assert allowed_hosts(" ") is None


def test_public_is_global_unicast_only() -> None:
    assert public(ipaddress.ip_address("8.8.8.8"))
    assert public(ipaddress.ip_address("2606:4700::1"))
    assert public(ipaddress.ip_address("::ffff:8.8.8.8"))
    assert not public(ipaddress.ip_address("ff0e::1"))  # global-scope multicast
    assert not public(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:f5ff:fffe"))  # Teredo


def rebinding() -> Iterator[list[str]]:
    yield ["93.184.215.14"]  # when the guard is written
    while True:
        yield ["127.0.0.1"]  # at delivery


async def test_delivery_connects_only_to_addresses_it_checked() -> None:
    """DNS rebinding: the name was public when checked, private when delivering."""
    answers = rebinding()

    async def lookup(_: str) -> list[str]:
        return next(answers)

    await check("https://rebind.example.com/hook", None, lookup)
    resolver = GuardedResolver(None, lookup)
    with pytest.raises(Refused, match=r"127\.0\.0\.1"):
        await resolver.resolve("rebind.example.com", 443, socket.AF_UNSPEC)


async def test_the_resolver_returns_exactly_the_checked_addresses() -> None:
    resolver = GuardedResolver(None, static({"hooks.example.com": ["8.8.8.8", "2606:4700::1"]}))
    found = await resolver.resolve("hooks.example.com", 443, socket.AF_UNSPEC)
    assert [(r["host"], r["port"], r["family"]) for r in found] == [
        ("8.8.8.8", 443, socket.AF_INET),
        ("2606:4700::1", 443, socket.AF_INET6),
    ]
    only_v4 = await resolver.resolve("hooks.example.com", 443, socket.AF_INET)
    assert [r["host"] for r in only_v4] == ["8.8.8.8"]
    allowed = GuardedResolver(allowed_hosts("hooks.internal"), static({}))
    with pytest.raises(Refused, match="not in TRACKER_WEBHOOK_HOSTS"):
        await allowed.resolve("elsewhere.internal", 80, socket.AF_UNSPEC)
