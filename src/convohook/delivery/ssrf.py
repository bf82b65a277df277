"""SSRF guard: webhook URLs are chosen by users, so they must not reach the host's own network.

This module is the policy, pure (no DNS, no sockets); `outbound/resolver.py` applies it to
names as they resolve. Three places enforce it, because each sees a different part of the truth:

- `check_target` (outbound/resolver.py), when a webhook is created or changed: a clear error
  at the moment the user can act on it. DNS may legitimately change later, so this is advice,
  not the protection.
- `GuardedResolver` (outbound/resolver.py), inside the transport's connector: every name is
  resolved, vetted, and aiohttp then connects to exactly the vetted addresses, so a second
  lookup (DNS rebinding) cannot swap in a private address between check and connect.
- `check_literal_target`, before each send: aiohttp never passes IP-literal hosts to the resolver.

Private, loopback, link-local and other non-public targets are allowed with
CONVOHOOK_ALLOW_PRIVATE_TARGETS=1, and the service's own public URL (its built-in capture bots)
through `exempt_origins`.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HINT = (
    "set CONVOHOOK_ALLOW_PRIVATE_TARGETS=1 to allow private, loopback and link-local targets, "
    "or list the network in CONVOHOOK_ALLOWED_TARGET_NETWORKS (e.g. 10.20.0.0/16)"
)

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IANA special-purpose registry entries that are not globally reachable. Checked in order: the
# first match names the reason shown to the user.
_IPV4_REFUSED: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified ('this network') address"),
    (_V4("10.0.0.0/8"), "private address"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT address"),
    (_V4("127.0.0.0/8"), "loopback address"),
    (_V4("169.254.0.0/16"), "link-local address"),
    (_V4("172.16.0.0/12"), "private address"),
    (_V4("192.0.0.0/24"), "IETF protocol assignment"),
    (_V4("192.0.2.0/24"), "documentation address"),
    (_V4("192.88.99.0/24"), "6to4 relay anycast address"),
    (_V4("192.168.0.0/16"), "private address"),
    (_V4("198.18.0.0/15"), "benchmarking address"),
    (_V4("198.51.100.0/24"), "documentation address"),
    (_V4("203.0.113.0/24"), "documentation address"),
    (_V4("224.0.0.0/4"), "multicast address"),
    (_V4("240.0.0.0/4"), "reserved address"),
)

# IPv6 is allow-listed: only global unicast 2000::/3 can be public, minus the special blocks
# inside it. Everything outside gets the first matching name here, or "reserved address".
_IPV6_GLOBAL_UNICAST = _V6("2000::/3")
_IPV6_NAMED: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "unspecified address"),
    (_V6("::1/128"), "loopback address"),
    (_V6("64:ff9b:1::/48"), "local-use NAT64 address"),
    (_V6("100::/64"), "discard-only address"),
    (_V6("fc00::/7"), "unique local (private) address"),
    (_V6("fe80::/10"), "link-local address"),
    (_V6("fec0::/10"), "site-local address"),
    (_V6("ff00::/8"), "multicast address"),
)
_IPV6_NAT64 = _V6("64:ff9b::/96")
_IPV6_TEREDO = _V6("2001::/32")
_IPV6_SIXTOFOUR = _V6("2002::/16")
_IPV6_REFUSED_IN_GLOBAL: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("2001::/23"), "IETF protocol assignment"),
    (_V6("2001:db8::/32"), "documentation address"),
    (_V6("3fff::/20"), "documentation address"),
)


class InvalidTarget(ValueError):
    """A webhook URL that cannot be a delivery target whatever the configuration."""


class BlockedTarget(OSError):
    """The SSRF guard refused a target.

    An OSError so that, raised from the resolver, aiohttp wraps it like any other lookup failure
    (as the `os_error` of a ClientConnectorError) and the transport can tell it apart.
    """

    def __init__(self, target: str, address: IPAddress | None, reason: str) -> None:
        self.target = target
        self.address = address
        self.reason = reason
        if address is None or str(address) == target:
            what = f"{target} ({reason})"
        else:
            what = f"{target}, which resolves to {address} ({reason})"
        super().__init__(f"refusing to send to {what}: {ALLOW_HINT}")


def refusal_reason(ip: IPAddress) -> str | None:
    """Why `ip` is not a public address, or None when it is."""
    if isinstance(ip, ipaddress.IPv4Address):
        for network, reason in _IPV4_REFUSED:
            if ip in network:
                return reason
        return None
    # Addresses that carry an IPv4 address are judged by it: the packets end up there.
    embedded: ipaddress.IPv4Address | None = None
    kind = ""
    if ip.ipv4_mapped is not None:
        embedded, kind = ip.ipv4_mapped, "IPv4-mapped"
    elif ip in _IPV6_NAT64:
        embedded, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    elif ip.sixtofour is not None:
        embedded, kind = ip.sixtofour, "6to4"
    elif ip.teredo is not None:
        server, client = ip.teredo
        server_reason = refusal_reason(server)
        if server_reason is not None:
            return f"Teredo address with a {server_reason} server ({server})"
        embedded, kind = client, "Teredo"
    if embedded is not None:
        inner = refusal_reason(embedded)
        return None if inner is None else f"{kind} {inner} ({embedded})"

    if ip not in _IPV6_GLOBAL_UNICAST:
        for network6, reason in _IPV6_NAMED:
            if ip in network6:
                return reason
        return "reserved address"
    for network6, reason in _IPV6_REFUSED_IN_GLOBAL:
        if ip in network6:
            return reason
    return None


Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def parse_networks(text: str) -> Networks:
    """`10.0.0.0/8,fd00::/8` (CONVOHOOK_ALLOWED_TARGET_NETWORKS), with a clear error."""
    networks = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ValueError(
                "CONVOHOOK_ALLOWED_TARGET_NETWORKS must be comma-separated networks such as "
                f"'10.20.0.0/16,fd00::/8', got {part!r}"
            ) from None
    return tuple(networks)


def blocked_reason(ip: IPAddress, allowed: Networks = ()) -> str | None:
    """Why sending to `ip` is refused, or None: public, or inside an allow-listed network."""
    if any(ip.version == n.version and ip in n for n in allowed):
        return None
    return refusal_reason(ip)


def is_public_address(ip: IPAddress) -> bool:
    """True when `ip` is globally reachable unicast: by default the only kind a webhook may use."""
    return refusal_reason(ip) is None


def _parse_ipv4_number(part: str) -> int | None:
    # inet_aton() rules, which getaddrinfo() and browsers follow: 0x-prefixed hex, 0-prefixed octal.
    if part[:2] in ("0x", "0X"):
        digits, base = part[2:] or "0", 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if not digits.isascii() or not digits.isalnum():
        return None
    try:
        return int(digits, base)
    except ValueError:
        return None


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` read as the system resolver would read an IPv4 literal, legacy forms included:
    `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` all mean 127.0.0.1."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(parts):
        return None
    numbers = [_parse_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *head, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in head) or last >= 1 << (32 - 8 * len(head)):
        return None
    value = last
    for index, n in enumerate(head):
        value |= n << (24 - 8 * index)
    return ipaddress.IPv4Address(value)


def _looks_numeric(label: str) -> bool:
    # The WHATWG URL rule: a host whose last label is a number is an IPv4 address or invalid,
    # never a name; otherwise `999.1.1.1` would be looked up in DNS.
    if label[:2] in ("0x", "0X"):
        return all(c in "0123456789abcdefABCDEF" for c in label[2:])
    return label.isascii() and label.isdigit()


def normalize_host(host: str) -> str:
    # One trailing dot marks a fully qualified name; it names the same host.
    return host.lower().removesuffix(".")


def host_ip(host: str) -> IPAddress | None:
    """The address an IP-literal host stands for (any IPv4 form, or IPv6), None for a name."""
    host = normalize_host(host)
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    return _parse_ipv4(host)


def _parse(url: str) -> URL:
    """`url` as a yarl URL, or InvalidTarget saying what is wrong with it."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidTarget(f"webhook URL must not contain spaces or control characters: {url!r}")
    try:
        parsed = URL(url)
        host = parsed.host
        parsed.port  # noqa: B018 - yarl validates the port lazily
    except (ValueError, TypeError) as exc:
        raise InvalidTarget(f"webhook URL {url!r} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidTarget(f"webhook URL must start with http:// or https://, got {url!r}")
    if not host:
        raise InvalidTarget(f"webhook URL has no host: {url!r}")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise InvalidTarget(
            "webhook URL must not contain a user name or password; receivers verify the "
            "webhook-signature header instead"
        )
    if ":" not in host:
        if "%" in host:
            raise InvalidTarget(f"webhook URL host must not be percent-encoded: {url!r}")
        last_label = normalize_host(host).rsplit(".", 1)[-1]
        if _looks_numeric(last_label) and _parse_ipv4(normalize_host(host)) is None:
            raise InvalidTarget(f"webhook URL host {host!r} is not a valid IPv4 address")
    return parsed


def check_url(url: str) -> None:
    """Raise InvalidTarget unless `url` is an absolute http(s) URL with a host and no userinfo."""
    _parse(url)


@functools.lru_cache(maxsize=1024)
def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the host canonical, so `127.1` and `127.0.0.1` are one origin."""
    try:
        parsed = URL(url)
        port = parsed.port
    except (ValueError, TypeError):
        return None
    if not parsed.host or port is None:
        return None
    ip = host_ip(parsed.host)
    host = str(ip) if ip is not None else normalize_host(parsed.host)
    return parsed.scheme.lower(), host, port


def is_exempt(url: str, exempt_origins: frozenset[str]) -> bool:
    """True when `url` is on one of `exempt_origins` (same scheme, host and effective port)."""
    if not exempt_origins:
        return False
    origin = _origin(url)
    return origin is not None and any(_origin(o) == origin for o in exempt_origins)


def exempt_endpoints(exempt_origins: Iterable[str]) -> frozenset[tuple[str, int]]:
    """The (host, port) pairs of `exempt_origins`: all a resolver learns about a request."""
    return frozenset(
        (origin[1], origin[2]) for o in exempt_origins if (origin := _origin(o)) is not None
    )


def check_literal_target(
    url: str,
    *,
    allow_private: bool,
    exempt_origins: frozenset[str] = frozenset(),
    allowed_networks: Networks = (),
) -> str | None:
    """Everything about `url` that can be decided without DNS.

    Raises InvalidTarget or BlockedTarget; returns the host name still to be resolved and
    checked, or None when nothing is left to check (an allowed IP literal, allowed private
    targets, or an exempt origin).
    """
    parsed = _parse(url)
    host = normalize_host(parsed.host or "")
    ip = host_ip(host)
    exempt = allow_private or is_exempt(url, exempt_origins)
    if ip is not None:
        if not exempt and (reason := blocked_reason(ip, allowed_networks)) is not None:
            raise BlockedTarget(host, ip, reason)
        if isinstance(ip, ipaddress.IPv4Address) and host != str(ip):
            # The HTTP client refuses legacy forms (and so do many receivers' Host checks).
            raise InvalidTarget(f"write the address in webhook URL {url!r} as {ip}")
        return None
    if exempt:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        # RFC 6761: these names are loopback whatever DNS says.
        raise BlockedTarget(host, None, "localhost name")
    return host
