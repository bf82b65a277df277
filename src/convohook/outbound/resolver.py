"""Names resolved under the SSRF guard (`delivery/ssrf.py` is the policy): `check_target` vets a
webhook URL when it is saved, `GuardedResolver` vets every address the transport connects to."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from convohook.delivery.ssrf import (
    BlockedTarget,
    IPAddress,
    Networks,
    blocked_reason,
    check_literal_target,
    exempt_endpoints,
    normalize_host,
)

DEFAULT_RESOLVE_TIMEOUT = 5.0


async def _resolve(host: str, port: int, seconds: float) -> list[IPAddress] | None:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(seconds):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        return None
    addresses: list[IPAddress] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses.append(ipaddress.ip_address(sockaddr[0]))
    return addresses


async def check_target(
    url: str,
    *,
    allow_private: bool,
    exempt_origins: frozenset[str] = frozenset(),
    allowed_networks: Networks = (),
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT,
) -> None:
    """Vet a webhook URL when it is created or changed: InvalidTarget or BlockedTarget if refused.

    A name that does not resolve (yet) is accepted: DNS is often set up after the webhook, and
    the transport checks again on every send.
    """
    host = check_literal_target(
        url,
        allow_private=allow_private,
        exempt_origins=exempt_origins,
        allowed_networks=allowed_networks,
    )
    if host is None:
        return
    port = URL(url).port or 0
    for ip in await _resolve(host, port, resolve_timeout) or ():
        if (reason := blocked_reason(ip, allowed_networks)) is not None:
            raise BlockedTarget(host, ip, reason)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses names resolving to any non-public address.

    All addresses must be public, not just one: aiohttp tries them in turn, so one private
    address among public ones would still be reached when the public ones fail.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        exempt_origins: frozenset[str] = frozenset(),
        allowed_networks: Networks = (),
        inner: AbstractResolver | None = None,
        timeout: float = DEFAULT_RESOLVE_TIMEOUT,
    ) -> None:
        # The system resolver (not aiodns) so that names resolve as in check_target, /etc/hosts
        # included.
        self._inner = inner if inner is not None else ThreadedResolver()
        self._allow_private = allow_private
        self._exempt = exempt_endpoints(exempt_origins)
        self._allowed = allowed_networks
        self._timeout = timeout

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            async with asyncio.timeout(self._timeout):
                results = await self._inner.resolve(host, port, family)
        except TimeoutError:
            # A plain OSError, not TimeoutError: aiohttp reports it as a DNS failure then, which
            # is what it is, rather than as a slow receiver.
            raise OSError(f"resolving {host} timed out after {self._timeout:g} s") from None
        if self._allow_private or (normalize_host(host), port) in self._exempt:
            return results
        for result in results:
            ip = ipaddress.ip_address(result["host"])
            if (reason := blocked_reason(ip, self._allowed)) is not None:
                raise BlockedTarget(normalize_host(host), ip, reason)
        return results

    async def close(self) -> None:
        await self._inner.close()
