"""The transport against a real local HTTP server: outcomes, classification and the SSRF guard."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from convohook import __version__
from convohook.delivery.result import AttemptResult
from convohook.outbound.webhooks import DEFAULT_MAX_BODY, create_session, send

BODY = b'{"conversationOpened": true}'
HEADERS = {"webhook-id": "msg_1", "content-type": "application/json"}


@dataclass
class Receiver:
    base: str
    port: int
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    peers: set[object] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def hits(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state: Receiver | None = None

    async def record(request: web.Request) -> None:
        assert state is not None
        state.requests.append((request.path, dict(request.headers), await request.read()))
        state.peers.add(request.transport.get_extra_info("peername") if request.transport else None)

    async def ok(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="thanks", status=200)

    async def error(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"x" * 50_000 + "é".encode(), status=500)

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=302, headers={"Location": "/ok"})

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        assert state is not None
        await state.release.wait()
        return web.Response(text="late")

    async def busy(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def invalid_utf8(request: web.Request) -> web.Response:
        return web.Response(body=b"ok \xff\xfe", status=201)

    app = web.Application()
    app.router.add_post("/ok", ok)
    app.router.add_post("/error", error)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/slow", slow)
    app.router.add_post("/busy", busy)
    app.router.add_post("/binary", invalid_utf8)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state = Receiver(base=f"http://127.0.0.1:{port}", port=port)
    yield state
    state.release.set()
    await runner.cleanup()


TEST_NAME = "hooks.test"


@pytest.fixture
async def test_name_resolves_to_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """`hooks.test` resolves to 127.0.0.1 through the system resolver's path, so the guard inside
    the connector is exercised (`localhost` is refused by name before any lookup)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **kwargs: Any) -> Any:
        if host == TEST_NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def _send(
    url: str,
    *,
    allow_private: bool = True,
    exempt_origins: frozenset[str] = frozenset(),
    timeout: float = 5.0,
    max_body: int = DEFAULT_MAX_BODY,
) -> AttemptResult:
    session = create_session(allow_private=allow_private, exempt_origins=exempt_origins)
    try:
        return await send(
            session,
            url,
            HEADERS,
            BODY,
            timeout=timeout,
            allow_private=allow_private,
            exempt_origins=exempt_origins,
            max_body=max_body,
        )
    finally:
        await session.close()


async def test_2xx(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/ok")
    assert result.status_code == 200
    assert result.ok
    assert result.response_body == "thanks"
    assert result.error is None
    assert result.error_class is None
    assert result.duration_ms > 0
    [(_, headers, body)] = receiver.requests
    assert body == BODY
    assert headers["User-Agent"] == f"convohook/{__version__}"
    assert headers["webhook-id"] == "msg_1"
    assert headers["Content-Type"] == "application/json"


async def test_keep_alive_reuses_the_connection(receiver: Receiver) -> None:
    session = create_session(allow_private=True)
    try:
        for _ in range(3):
            result = await send(
                session, f"{receiver.base}/ok", HEADERS, BODY, timeout=5, allow_private=True
            )
            assert result.ok
        assert len(receiver.requests) == 3
        assert len(receiver.peers) == 1  # one client port: the connection was reused
    finally:
        await session.close()


async def test_500_body_is_truncated(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/error")
    assert result.status_code == 500
    assert result.error_class == "http"
    assert result.error == "HTTP 500"
    assert len(result.response_body.encode()) == 20_000
    small = await _send(f"{receiver.base}/error", max_body=10)
    assert small.response_body == "x" * 10


async def test_undecodable_body_is_replaced(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/binary")
    assert result.status_code == 201
    assert result.response_body.startswith("ok ")
    assert "\ufffd" in result.response_body


async def test_redirect_is_not_followed(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/redirect")
    assert result.status_code == 302
    assert result.error_class == "http"
    assert result.error is not None
    assert "not followed" in result.error
    assert "/ok" in result.error
    assert receiver.hits("/ok") == 0


async def test_retry_after_header_is_returned(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/busy")
    assert (result.status_code, result.error_class, result.retry_after) == (429, "http", "120")


async def test_slow_receiver_times_out(receiver: Receiver) -> None:
    result = await _send(f"{receiver.base}/slow", timeout=0.2)
    assert result.status_code is None
    assert result.error_class == "timeout"
    assert result.error is not None
    assert "0.2 s" in result.error
    assert result.duration_ms < 2000


async def test_closed_port_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await _send(f"http://127.0.0.1:{port}/")
    assert result.status_code is None
    assert result.error_class == "connect"
    assert result.error


async def test_tls_to_a_plain_http_server_is_a_tls_error(receiver: Receiver) -> None:
    result = await _send(f"https://127.0.0.1:{receiver.port}/ok")
    assert result.status_code is None
    assert result.error_class == "tls"


async def test_unknown_name_is_a_dns_error() -> None:
    result = await _send("http://no-such-host.invalid/", allow_private=False)
    assert result.status_code is None
    assert result.error_class == "dns"
    assert result.error is not None
    assert "no-such-host.invalid" in result.error


@pytest.mark.usefixtures("test_name_resolves_to_loopback")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", TEST_NAME])
async def test_private_target_blocked_by_default(receiver: Receiver, host: str) -> None:
    # 127.0.0.1 and localhost are refused before sending, hooks.test by the resolver.
    result = await _send(f"http://{host}:{receiver.port}/ok", allow_private=False)
    assert result.status_code is None
    assert result.error_class == "blocked"
    assert result.error is not None
    assert "CONVOHOOK_ALLOW_PRIVATE_TARGETS=1" in result.error
    assert "loopback" in result.error
    assert host in result.error
    if host == TEST_NAME:
        assert "which resolves to 127.0.0.1" in result.error
    assert receiver.requests == []


async def test_legacy_ipv4_form_is_blocked_before_sending(receiver: Receiver) -> None:
    result = await _send(f"http://2130706433:{receiver.port}/ok", allow_private=False)
    assert result.error_class == "blocked"
    assert "127.0.0.1" in (result.error or "")


@pytest.mark.usefixtures("test_name_resolves_to_loopback")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", TEST_NAME])
async def test_private_target_allowed_when_configured(receiver: Receiver, host: str) -> None:
    result = await _send(f"http://{host}:{receiver.port}/ok", allow_private=True)
    assert result.status_code == 200


@pytest.mark.usefixtures("test_name_resolves_to_loopback")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", TEST_NAME])
async def test_exempt_origin_allowed(receiver: Receiver, host: str) -> None:
    origin = f"http://{host}:{receiver.port}"
    result = await _send(f"{origin}/ok", allow_private=False, exempt_origins=frozenset({origin}))
    assert result.status_code == 200
    assert receiver.hits("/ok") == 1


@pytest.mark.usefixtures("test_name_resolves_to_loopback")
async def test_exemption_is_per_origin(receiver: Receiver) -> None:
    other = frozenset({f"http://127.0.0.1:{receiver.port + 1}", f"http://{TEST_NAME}:1"})
    for host in ("127.0.0.1", "localhost", TEST_NAME):
        result = await _send(
            f"http://{host}:{receiver.port}/ok", allow_private=False, exempt_origins=other
        )
        assert result.error_class == "blocked"
    assert receiver.requests == []


async def test_invalid_url_is_reported_not_raised() -> None:
    result = await _send("ftp://example.com/")
    assert result.error_class == "blocked"
    assert "http://" in (result.error or "")
