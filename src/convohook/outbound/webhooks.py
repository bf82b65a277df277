"""Webhook attempts on the wire: one signed POST per attempt, SSRF-guarded.

`send` never raises for a network problem: every attempt ends in an AttemptResult that the
dispatcher logs and feeds to the retry policy.

How the guard and the exemption fit together. One session serves every webhook. Its resolver
(GuardedResolver) vets every name and is told the (host, port) of each exempt origin, because
host and port are all a resolver ever sees; `send` checks IP-literal hosts itself, which aiohttp
never passes to a resolver, with the full scheme+host+port origin rule. A URL that differs from
an exempt origin only by scheme therefore passes the resolver: it reaches the same socket on the
service's own host, so nothing new becomes reachable. The alternative, a second unguarded session
for exempt origins, would double the pools and put the guard's correctness in the caller's choice
of session.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping

import aiohttp

from convohook import __version__
from convohook.delivery.result import AttemptResult
from convohook.delivery.ssrf import BlockedTarget, InvalidTarget, Networks, check_literal_target
from convohook.outbound.resolver import GuardedResolver

USER_AGENT = f"convohook/{__version__}"
DEFAULT_MAX_BODY = 20_000
# Only a fallback for requests made on the session outside `send`, which sets its own.
_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=30)


def create_session(
    *,
    allow_private: bool,
    exempt_origins: frozenset[str] = frozenset(),
    allowed_networks: Networks = (),
    limit: int = 512,
) -> aiohttp.ClientSession:
    """The delivery session: keep-alive pool, guarded resolver, no cookies, no proxies.

    Call it inside the running event loop and close it at shutdown. Pass `send` the same
    `allow_private` and `exempt_origins`.
    """
    resolver = GuardedResolver(
        allow_private=allow_private,
        exempt_origins=exempt_origins,
        allowed_networks=allowed_networks,
    )
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, resolver=resolver),
        # Receivers setting cookies must not make one delivery depend on another.
        cookie_jar=aiohttp.DummyCookieJar(),
        # A proxy from the environment would resolve names itself, past the guard.
        trust_env=False,
        timeout=_SESSION_TIMEOUT,
    )


async def send(
    session: aiohttp.ClientSession,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    timeout: float,
    allow_private: bool,
    exempt_origins: frozenset[str] = frozenset(),
    allowed_networks: Networks = (),
    max_body: int = DEFAULT_MAX_BODY,
) -> AttemptResult:
    """POST `body` to `url` once; `timeout` bounds the whole exchange, response body included.

    Redirects are not followed: the signature is for this URL, and a redirect could lead past
    the guard. At most `max_body` bytes of the response are read (decoded as UTF-8, invalid bytes
    replaced), so a huge answer costs neither memory nor time.
    """
    started = time.perf_counter()

    def elapsed_ms() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        check_literal_target(
            url,
            allow_private=allow_private,
            exempt_origins=exempt_origins,
            allowed_networks=allowed_networks,
        )
    except (InvalidTarget, BlockedTarget) as exc:
        return AttemptResult(None, "", elapsed_ms(), str(exc), "blocked")

    status: int | None = None
    retry_after: str | None = None
    location: str | None = None
    received = bytearray()
    try:
        async with session.post(
            url,
            data=body,
            headers={"User-Agent": USER_AGENT, **headers},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            status = response.status
            retry_after = response.headers.get("Retry-After")
            location = response.headers.get("Location")
            # Leaving the block with unread data closes the connection instead of reusing it.
            while len(received) < max_body:
                chunk = await response.content.read(max_body - len(received))
                if not chunk:
                    break
                received += chunk
        read_error = None
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
        error_class, message = _classify(exc, timeout)
        if status is None:
            return AttemptResult(None, "", elapsed_ms(), message, error_class)
        read_error = f"reading the response body failed ({error_class}): {message}"

    text = received.decode("utf-8", errors="replace")
    if 200 <= status < 300:
        return AttemptResult(status, text, elapsed_ms(), read_error, None, retry_after)
    error = f"HTTP {status}"
    if 300 <= status < 400:
        error += f": redirects are not followed (Location: {location or 'none'})"
    if read_error is not None:
        error += f"; {read_error}"
    return AttemptResult(status, text, elapsed_ms(), error, "http", retry_after)


def _classify(exc: BaseException, timeout: float) -> tuple[str, str]:
    """(error_class, message) for an exception raised while sending."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The resolver's refusal and DNS failures both arrive wrapped by the connector.
        os_error = exc.os_error
        if isinstance(os_error, BlockedTarget):
            return "blocked", str(os_error)
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return "dns", f"DNS lookup for {exc.host} failed: {os_error}"
        if isinstance(os_error, TimeoutError) and not isinstance(exc, aiohttp.ClientSSLError):
            return "timeout", f"connecting to {exc.host}:{exc.port} timed out"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls", f"TLS error: {exc}"
    if isinstance(exc, TimeoutError):
        return "timeout", f"no complete response within {timeout:g} s"
    if isinstance(exc, aiohttp.InvalidURL):
        return "blocked", f"invalid target URL: {exc}"
    return "connect", str(exc) or type(exc).__name__
