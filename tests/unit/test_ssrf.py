"""The SSRF guard: which addresses are public, how URLs are read, what the errors say."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from convohook.delivery.ssrf import (
    BlockedTarget,
    InvalidTarget,
    check_literal_target,
    check_url,
    host_ip,
    is_exempt,
    is_public_address,
    parse_networks,
    refusal_reason,
)
from convohook.outbound.resolver import GuardedResolver, check_target

ENV_VAR = "CONVOHOOK_ALLOW_PRIVATE_TARGETS=1"

REFUSED = [
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.8", "IETF"),
    ("192.0.2.1", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
    ("::ffff:10.1.2.3", "IPv4-mapped private"),
    ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
    ("64:ff9b::7f00:1", "NAT64 loopback"),
    ("64:ff9b::a9fe:a9fe", "NAT64 link-local"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("::127.0.0.1", "reserved"),  # IPv4-compatible, deprecated
    ("100::1", "discard-only"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2002:7f00:1::1", "6to4 loopback"),
    ("2002:c0a8:101::1", "6to4 private"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo documentation"),  # client 192.0.2.45
    ("2001:0:7f00:1::", "Teredo address with a loopback"),  # server 127.0.0.1
    ("2001:2::1", "IETF"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "reserved"),
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, public server and client 8.8.8.8
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused_addresses(address: str, reason: str) -> None:
    ip = ipaddress.ip_address(address)
    assert not is_public_address(ip)
    assert reason in (refusal_reason(ip) or "")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address)), refusal_reason(
        ipaddress.ip_address(address)
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::1", "::1"),
        ("::ffff:7f00:1", "::ffff:7f00:1"),
        ("example.com", None),
        ("256.0.0.1", None),
        ("1.2.3.4.5", None),
        ("08.0.0.1", None),
        ("4294967296", None),
        ("1.16777216", None),
    ],
)
def test_host_ip_reads_every_ipv4_form(host: str, expected: str | None) -> None:
    ip = host_ip(host)
    assert (None if ip is None else str(ip)) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://example.com:8443/a?b=c",
        "http://8.8.8.8/",
        "http://[2606:4700:4700::1111]/",
        "https://bücher.example/",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_check_url_accepts(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("gopher://127.0.0.1:6379/_", "http:// or https://"),
        ("example.com/hook", "http:// or https://"),
        ("http:///path", "no host"),
        ("http://user:pass@example.com/", "user name or password"),
        ("http://user@example.com/", "user name or password"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://example.com/\r\nX-Injected: 1", "spaces or control characters"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://999.1.1.1/", "not a valid IPv4"),
        ("http://1.2.3.08/", "not a valid IPv4"),
    ],
)
def test_check_url_refuses_clearly(url: str, message: str) -> None:
    with pytest.raises(InvalidTarget, match=message):
        check_url(url)


@pytest.mark.parametrize(
    ("url", "address", "reason"),
    [
        ("http://127.0.0.1/", "127.0.0.1", "loopback"),
        ("http://2130706433/", "127.0.0.1", "loopback"),
        ("http://0177.0.0.1/", "127.0.0.1", "loopback"),
        ("http://0x7f.1/", "127.0.0.1", "loopback"),
        ("http://127.1:8080/", "127.0.0.1", "loopback"),
        ("http://[::1]:8000/", "::1", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", "loopback"),
        ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "link-local"),
        ("http://[fe80::1%25eth0]/", "fe80::1%eth0", "link-local"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
        ("http://10.0.0.5/", "10.0.0.5", "private"),
        ("http://0.0.0.0:8000/", "0.0.0.0", "unspecified"),
    ],
)
async def test_check_target_refuses_private_literals(url: str, address: str, reason: str) -> None:
    with pytest.raises(BlockedTarget) as excinfo:
        await check_target(url, allow_private=False)
    message = str(excinfo.value)
    assert address in message
    assert reason in message
    assert ENV_VAR in message
    assert excinfo.value.address == ipaddress.ip_address(address)


def test_blocked_message_is_the_documented_one() -> None:
    with pytest.raises(BlockedTarget) as excinfo:
        check_literal_target("http://127.0.0.1/", allow_private=False)
    assert str(excinfo.value) == (
        "refusing to send to 127.0.0.1 (loopback address): set CONVOHOOK_ALLOW_PRIVATE_TARGETS=1"
        " to allow private, loopback and link-local targets, or list the network in"
        " CONVOHOOK_ALLOWED_TARGET_NETWORKS (e.g. 10.20.0.0/16)"
    )


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://10.20.3.4/", "10.20.0.0/16"),
        ("http://[fd00::5]/", "fd00::/8"),
        ("http://127.0.0.1:8080/", "127.0.0.0/8"),
    ],
)
def test_allow_listed_networks_pass_and_others_stay_blocked(url: str, allowed: str) -> None:
    networks = parse_networks(allowed)
    assert check_literal_target(url, allow_private=False, allowed_networks=networks) is None
    with pytest.raises(BlockedTarget):
        check_literal_target("http://192.168.1.1/", allow_private=False, allowed_networks=networks)


def test_allow_listed_networks_are_validated() -> None:
    with pytest.raises(ValueError, match="CONVOHOOK_ALLOWED_TARGET_NETWORKS"):
        parse_networks("10.0.0.0/8,not-a-network")
    assert parse_networks(" 10.0.0.0/8 , ,fd00::/8") == parse_networks("10.0.0.0/8,fd00::/8")


async def test_resolver_honours_allow_listed_networks() -> None:
    class Fixed(AbstractResolver):
        async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
            return [
                {
                    "hostname": host,
                    "host": "10.20.0.7",
                    "port": port,
                    "family": 2,
                    "proto": 0,
                    "flags": 0,
                }
            ]

        async def close(self) -> None:
            return None

    allowed = GuardedResolver(
        allow_private=False, inner=Fixed(), allowed_networks=parse_networks("10.20.0.0/16")
    )
    assert (await allowed.resolve("crm.internal", 443))[0]["host"] == "10.20.0.7"
    blocked = GuardedResolver(allow_private=False, inner=Fixed())
    with pytest.raises(BlockedTarget):
        await blocked.resolve("crm.internal", 443)


@pytest.mark.parametrize(
    "url", ["http://localhost:8000/", "http://LOCALHOST./", "http://a.b.localhost/"]
)
async def test_localhost_names_refused_without_dns(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("localhost names must be refused before any lookup")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", no_dns)
    with pytest.raises(BlockedTarget, match=ENV_VAR):
        await check_target(url, allow_private=False)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://localhost/", "http://[::1]/", "http://10.0.0.5/"],
)
async def test_allow_private_allows(url: str) -> None:
    await check_target(url, allow_private=True)


@pytest.mark.parametrize("allow_private", [False, True])
async def test_legacy_ipv4_form_of_a_public_address_is_invalid(allow_private: bool) -> None:
    # The HTTP client cannot send to these, so say how to write them instead of failing later.
    with pytest.raises(InvalidTarget, match=r"as 8\.8\.8\.8"):
        await check_target("http://134744072/", allow_private=allow_private)


def _fake_getaddrinfo(answers: dict[str, list[str]]) -> Any:
    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[Any] = []
        for address in answers[host]:
            ip = ipaddress.ip_address(address)
            if ip.version == 4:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            else:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        return infos

    return getaddrinfo


DNS = {
    "public.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
    "internal.example": ["10.0.0.7"],
    "mixed.example": ["93.184.216.34", "192.168.0.10"],
    "rebind.example": ["93.184.216.34", "::1"],
}


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", _fake_getaddrinfo(DNS))


@pytest.mark.usefixtures("fake_dns")
async def test_check_target_resolves_names() -> None:
    await check_target("https://public.example/hook", allow_private=False)
    with pytest.raises(BlockedTarget, match=r"internal\.example, which resolves to 10\.0\.0\.7"):
        await check_target("https://internal.example/hook", allow_private=False)
    # Every address counts, not just the first.
    with pytest.raises(BlockedTarget, match=r"192\.168\.0\.10 \(private address\)"):
        await check_target("https://mixed.example/hook", allow_private=False)
    with pytest.raises(BlockedTarget, match="::1"):
        await check_target("https://rebind.example/hook", allow_private=False)
    await check_target("https://internal.example/hook", allow_private=True)


@pytest.mark.usefixtures("fake_dns")
async def test_unresolvable_names_are_allowed_at_creation() -> None:
    await check_target("https://not-yet.example/hook", allow_private=False)


async def test_slow_dns_is_allowed_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hang(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(10)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", hang)
    await asyncio.wait_for(
        check_target("https://slow.example/", allow_private=False, resolve_timeout=0.05), 2
    )


# Exempt origins: the service's own public URL


EXEMPT = frozenset({"http://127.0.0.1:8000"})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8000/bots/abc/capture", True),
        ("http://127.0.0.1:8000", True),
        ("http://127.1:8000/x", True),  # same host, other spelling
        ("HTTP://127.0.0.1:8000/x", True),
        ("http://127.0.0.1:8001/x", False),
        ("http://127.0.0.1/x", False),
        ("https://127.0.0.1:8000/x", False),
        ("http://localhost:8000/x", False),  # a name is not the address it resolves to
        ("http://127.0.0.2:8000/x", False),
        ("not a url", False),
    ],
)
def test_is_exempt(url: str, expected: bool) -> None:
    assert is_exempt(url, EXEMPT) is expected


def test_is_exempt_default_ports_and_names() -> None:
    exempt = frozenset({"https://Convohook.Example.com/"})
    assert is_exempt("https://convohook.example.com:443/bots/x", exempt)
    assert is_exempt("https://convohook.example.com./bots/x", exempt)
    assert not is_exempt("http://convohook.example.com/bots/x", exempt)
    assert not is_exempt("https://convohook.example.com/", frozenset())


async def test_exempt_origin_passes_the_creation_check() -> None:
    await check_target("http://127.0.0.1:8000/bots/b1", allow_private=False, exempt_origins=EXEMPT)
    with pytest.raises(BlockedTarget):
        await check_target("http://127.0.0.1:9000/", allow_private=False, exempt_origins=EXEMPT)


# GuardedResolver, with a stand-in for the system resolver


class StaticResolver(AbstractResolver):
    def __init__(self, answers: dict[str, list[str]], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.sleep(self.delay)
        host = host.lower().rstrip(".")
        if host not in self.answers:
            raise OSError(f"no such host {host}")
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0, flags=0)
            for a in self.answers[host]
        ]

    async def close(self) -> None:
        self.closed = True


async def test_guarded_resolver_passes_public_answers_through() -> None:
    resolver = GuardedResolver(allow_private=False, inner=StaticResolver(DNS))
    results = await resolver.resolve("public.example", 443)
    assert [r["host"] for r in results] == DNS["public.example"]


@pytest.mark.parametrize("host", ["internal.example", "mixed.example", "rebind.example"])
async def test_guarded_resolver_refuses_any_private_answer(host: str) -> None:
    resolver = GuardedResolver(allow_private=False, inner=StaticResolver(DNS))
    with pytest.raises(BlockedTarget, match=ENV_VAR) as excinfo:
        await resolver.resolve(host, 443)
    assert isinstance(excinfo.value, OSError)  # what lets aiohttp carry it to the transport


async def test_guarded_resolver_allow_private() -> None:
    resolver = GuardedResolver(allow_private=True, inner=StaticResolver(DNS))
    assert await resolver.resolve("internal.example", 80)


async def test_guarded_resolver_exempt_host_and_port_only() -> None:
    resolver = GuardedResolver(
        allow_private=False,
        exempt_origins=frozenset({"http://internal.example:8000"}),
        inner=StaticResolver(DNS),
    )
    assert await resolver.resolve("internal.example", 8000)
    assert await resolver.resolve("Internal.Example.", 8000)
    with pytest.raises(BlockedTarget):
        await resolver.resolve("internal.example", 80)


async def test_guarded_resolver_lookup_timeout_is_a_plain_oserror() -> None:
    resolver = GuardedResolver(
        allow_private=False, inner=StaticResolver(DNS, delay=5), timeout=0.05
    )
    with pytest.raises(OSError, match="timed out") as excinfo:
        await resolver.resolve("public.example", 443)
    assert not isinstance(excinfo.value, TimeoutError)


async def test_guarded_resolver_closes_inner() -> None:
    inner = StaticResolver(DNS)
    await GuardedResolver(allow_private=False, inner=inner).close()
    assert inner.closed
