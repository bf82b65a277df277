"""The Graph API client against the stand-in, both served for real by uvicorn on a local port."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from convohook.devtools.graph_standin import (
    ProfileRegistry,
    StandinError,
    create_graph_standin,
    igsid_for_username,
    register_profile,
    standin_base_url,
)
from convohook.domain.payload import CustomerProfile
from convohook.meta.graph import ProfileUnavailable, default_graph_api_url, profile_from_body
from convohook.outbound.graph_client import GraphClient, create_graph_session

TOKEN = "IGAAT0pS3cr3t+token/with=chars"
ADA = "1784140000000001"


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 at an ephemeral port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        # The slow-mode test leaves a sleeping handler behind; do not wait long for it.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("uvicorn did not start within 2 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)
        sock.close()


@dataclass
class Standin:
    base: str
    registry: ProfileRegistry

    @property
    def graph_url(self) -> str:
        return f"{self.base}/v24.0"


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    registry = ProfileRegistry()
    async with serving(create_graph_standin(registry)) as base:
        yield Standin(base, registry)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def client(http: aiohttp.ClientSession, url: str, timeout: float = 2.0) -> GraphClient:
    return GraphClient(http, url, timeout=timeout)


async def fault(http: aiohttp.ClientSession, standin: Standin, **body: object) -> dict[str, Any]:
    async with http.post(f"{standin.base}/_standin/faults", json=body) as response:
        assert response.status == 200, await response.text()
        result: dict[str, Any] = await response.json()
        return result


async def get_json(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as response:
        return response.status, await response.json()


def assert_no_token(exc: ProfileUnavailable) -> None:
    for text in (str(exc), exc.reason, repr(exc)):
        assert TOKEN not in text
        assert "S3cr3t" not in text
    # A logged traceback must not print a cause whose message holds the request URL.
    assert exc.__cause__ is None
    assert exc.__context__ is None or exc.__suppress_context__


def test_default_graph_api_url() -> None:
    assert default_graph_api_url() == "https://graph.instagram.com/v24.0"


async def test_fetch_profile(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "ada.lovelace", "Ada Lovelace")
    profile = await client(http, standin.graph_url + "/").fetch_profile(ADA, TOKEN)
    assert profile == CustomerProfile(username="ada.lovelace", name="Ada Lovelace")
    assert standin.registry.requests_for(ADA) == 1


async def test_the_profile_fields_for_bots_come_with_it(
    standin: Standin, http: aiohttp.ClientSession
) -> None:
    standin.registry.put(
        ADA,
        "ada.lovelace",
        "Ada Lovelace",
        follower_count=1815,
        is_user_follow_business=False,
        is_verified_user=True,
    )
    profile = await client(http, standin.graph_url).fetch_profile(ADA, TOKEN)
    assert (profile.follower_count, profile.is_user_follow_business, profile.is_verified_user) == (
        1815,
        False,
        True,
    )


@pytest.mark.parametrize(
    "extra",
    [
        {},  # not shared: left out, as Meta does
        {"follower_count": None, "is_user_follow_business": None, "is_verified_user": None},
        {"follower_count": "12", "is_user_follow_business": 1, "is_verified_user": "true"},
        {"follower_count": True, "is_user_follow_business": "no", "is_verified_user": 0},
        {"follower_count": -1},
    ],
)
def test_profile_fields_not_shared_or_malformed_are_unknown(extra: dict[str, Any]) -> None:
    body = orjson.dumps({"username": "ada.lovelace", "id": ADA, **extra})
    profile = profile_from_body(ADA, body, TOKEN)
    assert profile.username == "ada.lovelace"
    assert (profile.follower_count, profile.is_user_follow_business, profile.is_verified_user) == (
        None,
        None,
        None,
    )


async def test_missing_name_gives_none(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "nameless.one", None)
    profile = await client(http, standin.graph_url).fetch_profile(ADA, TOKEN)
    assert profile.name is None
    assert profile.display_name == "nameless.one"


async def test_unknown_igsid_is_permanent(standin: Standin, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, standin.graph_url).fetch_profile("999", TOKEN)
    assert not caught.value.retryable
    assert "400" in caught.value.reason
    assert "No matching user found" in caught.value.reason
    assert "subcode 2018001" in caught.value.reason
    assert "fbtrace_id" in caught.value.reason
    assert_no_token(caught.value)


async def test_empty_token_is_permanent_without_a_request(
    standin: Standin, http: aiohttp.ClientSession
) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, standin.graph_url).fetch_profile(ADA, "")
    assert not caught.value.retryable
    assert standin.registry.requests_served == 0


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("down", "503"), ("error", "code 2")],
)
async def test_outages_are_retryable(
    standin: Standin, http: aiohttp.ClientSession, mode: str, expected: str
) -> None:
    standin.registry.put(ADA, "ada.lovelace", "Ada Lovelace")
    await fault(http, standin, mode=mode, count=1)
    graph = client(http, standin.graph_url)
    with pytest.raises(ProfileUnavailable) as caught:
        await graph.fetch_profile(ADA, TOKEN)
    assert caught.value.retryable
    assert expected in caught.value.reason
    assert_no_token(caught.value)
    # count=1: the next request is served normally.
    assert (await graph.fetch_profile(ADA, TOKEN)).username == "ada.lovelace"


async def test_fault_without_count_lasts_until_reset(
    standin: Standin, http: aiohttp.ClientSession
) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    state = await fault(http, standin, mode="down", count=None)
    assert state == {"mode": "down", "delay": 0.0, "count": None}
    graph = client(http, standin.graph_url)
    for _ in range(3):
        with pytest.raises(ProfileUnavailable):
            await graph.fetch_profile(ADA, TOKEN)
    await fault(http, standin, mode="ok")
    assert (await graph.fetch_profile(ADA, TOKEN)).username == "ada.lovelace"


async def test_slow_beyond_timeout_is_retryable(
    standin: Standin, http: aiohttp.ClientSession
) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    await fault(http, standin, mode="slow", delay=1.0, count=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, standin.graph_url, timeout=0.2).fetch_profile(ADA, TOKEN)
    assert loop.time() - started < 0.9
    assert caught.value.retryable
    assert "timed out after 0.2 s" in caught.value.reason
    assert_no_token(caught.value)


async def test_slow_within_timeout_answers(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    await fault(http, standin, mode="slow", delay=0.1, count=1)
    profile = await client(http, standin.graph_url, timeout=2).fetch_profile(ADA, TOKEN)
    assert profile.username == "ada.lovelace"


async def test_connection_refused_is_retryable(http: aiohttp.ClientSession) -> None:
    port = closed_port()
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, f"http://127.0.0.1:{port}/v24.0").fetch_profile(ADA, TOKEN)
    assert caught.value.retryable
    assert "unreachable" in caught.value.reason
    assert_no_token(caught.value)


async def test_invalid_base_url_is_permanent(http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, "graph.instagram.com/v24.0").fetch_profile(ADA, TOKEN)
    assert not caught.value.retryable
    assert "CONVOHOOK_GRAPH_API_URL" in caught.value.reason
    assert_no_token(caught.value)


async def test_fields_are_filtered_like_meta(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "ada.lovelace", "Ada Lovelace")
    url = f"{standin.graph_url}/{ADA}"

    status, body = await get_json(http, url, fields="name,username", access_token="t")
    assert status == 200
    assert list(body.items()) == [
        ("name", "Ada Lovelace"),
        ("username", "ada.lovelace"),
        ("id", ADA),
    ]

    status, body = await get_json(http, url, fields="username", access_token="t")
    assert body == {"username": "ada.lovelace", "id": ADA}

    status, body = await get_json(http, url, fields="username,profile_pic", access_token="t")
    assert body == {"username": "ada.lovelace", "id": ADA}

    status, body = await get_json(http, url, access_token="t")
    assert body == {"id": ADA}

    status, body = await get_json(http, url, fields="username,email", access_token="t")
    assert status == 400
    assert body["error"]["code"] == 100
    assert "(email)" in body["error"]["message"]


async def test_meta_error_shapes(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    status, body = await get_json(http, f"{standin.graph_url}/{ADA}", fields="username")
    assert status == 400
    assert body["error"]["code"] == 190
    assert body["error"]["type"] == "OAuthException"

    status, body = await get_json(
        http, f"{standin.graph_url}/404404", fields="username", access_token="t"
    )
    assert status == 400
    error = body["error"]
    assert set(error) == {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "OAuthException",
        100,
        2018001,
    )

    await fault(http, standin, mode="error", count=1)
    status, body = await get_json(http, f"{standin.graph_url}/{ADA}", access_token="t")
    assert status == 500
    assert body["error"]["code"] == 2


async def test_requests_are_counted(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.registry.put(ADA, "ada.lovelace", None)
    graph = client(http, standin.graph_url)
    await graph.fetch_profile(ADA, TOKEN)
    await graph.fetch_profile(ADA, TOKEN)
    with pytest.raises(ProfileUnavailable):
        await graph.fetch_profile("42", TOKEN)
    status, body = await get_json(http, f"{standin.base}/_standin/requests")
    assert status == 200
    assert body == {"count": 3, "by_igsid": {ADA: 2, "42": 1}}


async def test_each_app_has_its_own_state(http: aiohttp.ClientSession) -> None:
    first, second = create_graph_standin(), create_graph_standin()
    first.state.registry.put(ADA, "ada.lovelace", None)
    assert second.state.registry.get(ADA) is None


async def test_fault_validation(standin: Standin, http: aiohttp.ClientSession) -> None:
    for body in (
        {"mode": "broken"},
        {"mode": "down", "count": 0},
        {"mode": "down", "count": "2"},
        {"mode": "slow", "delay": -1},
        {"mode": "slow", "delay": 10_000},
    ):
        async with http.post(f"{standin.base}/_standin/faults", json=body) as response:
            assert response.status == 400, body
            assert "error" in await response.json()
    async with http.put(f"{standin.base}/_standin/profiles/1", data=b"[") as response:
        assert response.status == 400


def test_igsid_for_username_is_stable_and_numeric() -> None:
    igsid = igsid_for_username("grace.hopper")
    assert igsid == igsid_for_username("grace.hopper")
    assert igsid == igsid_for_username("@Grace.Hopper")
    assert len(igsid) == 16
    assert igsid.isdigit()
    assert igsid != igsid_for_username("ada.lovelace")
    ids = {igsid_for_username(f"user{i}") for i in range(500)}
    assert len(ids) == 500
    assert all(len(i) == 16 and i.isdigit() and i[0] != "0" for i in ids)
    with pytest.raises(ValueError, match="username"):
        igsid_for_username(" @ ")


def test_standin_base_url() -> None:
    assert standin_base_url("http://h:1/v24.0") == "http://h:1"
    assert standin_base_url("http://h:1/_demo/graph/v24.0/") == "http://h:1/_demo/graph"
    assert standin_base_url("http://h:1/_demo/graph") == "http://h:1/_demo/graph"


@pytest.mark.parametrize("versioned", [True, False])
async def test_register_profile_round_trip(
    standin: Standin, http: aiohttp.ClientSession, versioned: bool
) -> None:
    igsid = igsid_for_username("grace.hopper")
    url = standin.graph_url if versioned else standin.base
    saved = await register_profile(url, igsid, "grace.hopper", "Grace Hopper")
    assert saved == CustomerProfile(username="grace.hopper", name="Grace Hopper")

    status, body = await get_json(http, f"{standin.base}/_standin/profiles")
    assert status == 200
    assert body == {"items": [{"id": igsid, "username": "grace.hopper", "name": "Grace Hopper"}]}

    profile = await client(http, standin.graph_url).fetch_profile(igsid, TOKEN)
    assert profile == saved

    # Registering again replaces, and a caller's session is used when given.
    await register_profile(url, igsid, "grace.hopper", None, session=http)
    assert (await client(http, standin.graph_url).fetch_profile(igsid, TOKEN)).name is None


async def test_register_profile_when_mounted_like_the_demo(http: aiohttp.ClientSession) -> None:
    app = Starlette(routes=[Mount("/_demo/graph", app=create_graph_standin())])
    async with serving(app) as base:
        graph_url = f"{base}/_demo/graph/v24.0"
        igsid = igsid_for_username("ada.lovelace")
        await register_profile(graph_url, igsid, "ada.lovelace", "Ada Lovelace")
        profile = await client(http, graph_url).fetch_profile(igsid, TOKEN)
    assert profile == CustomerProfile(username="ada.lovelace", name="Ada Lovelace")


async def test_register_profile_closed_port_says_how_to_fix() -> None:
    port = closed_port()
    with pytest.raises(StandinError) as caught:
        await register_profile(f"http://127.0.0.1:{port}/v24.0", "1", "ada.lovelace", None)
    message = str(caught.value)
    assert f"could not reach the Graph API stand-in at http://127.0.0.1:{port}" in message
    assert "/v24.0" not in message
    assert "`convohook demo`" in message
    assert "`convohook graph-standin`" in message


# A server that is not the stand-in, to see the client cope with whatever comes back.
async def echo_error(request: Request) -> Response:
    return JSONResponse(
        {"error": {"message": f"bad request {request.url}", "type": "OAuthException", "code": 190}},
        status_code=400,
    )


async def raw_path(request: Request) -> Response:
    return JSONResponse({"username": request.scope["raw_path"].decode(), "id": "1"})


async def not_json(request: Request) -> Response:
    return PlainTextResponse("<html>captive portal</html>")


async def no_username(request: Request) -> Response:
    return JSONResponse({"name": "Ada", "id": "1"})


async def huge(request: Request) -> Response:
    return PlainTextResponse("x" * 200_000, status_code=502)


@pytest.fixture
async def other() -> AsyncIterator[str]:
    app = Starlette(
        routes=[
            Route("/echo/{igsid}", echo_error),
            Route("/raw/{igsid:path}", raw_path),
            Route("/html/{igsid}", not_json),
            Route("/nousername/{igsid}", no_username),
            Route("/huge/{igsid}", huge),
        ]
    )
    async with serving(app) as base:
        yield base


async def test_token_echoed_by_server_is_redacted(other: str, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, f"{other}/echo").fetch_profile(ADA, TOKEN)
    assert not caught.value.retryable
    assert "[redacted]" in caught.value.reason
    assert_no_token(caught.value)


async def test_igsid_is_quoted_into_one_segment(other: str, http: aiohttp.ClientSession) -> None:
    profile = await client(http, f"{other}/raw").fetch_profile("../me?x=1", TOKEN)
    # "/" and "?" are escaped; yarl may leave a harmless "=" as it is.
    assert profile.username in ("/raw/..%2Fme%3Fx%3D1", "/raw/..%2Fme%3Fx=1")


async def test_a_200_that_is_not_json_is_retryable(other: str, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, f"{other}/html").fetch_profile(ADA, TOKEN)
    assert caught.value.retryable
    assert "captive portal" in caught.value.reason


async def test_missing_username_is_permanent(other: str, http: aiohttp.ClientSession) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, f"{other}/nousername").fetch_profile(ADA, TOKEN)
    assert not caught.value.retryable
    assert "no username" in caught.value.reason
    assert "id, name" in caught.value.reason


async def test_oversized_error_body_is_not_read_whole(
    other: str, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ProfileUnavailable) as caught:
        await client(http, f"{other}/huge").fetch_profile(ADA, TOKEN)
    assert caught.value.retryable
    assert "larger than" in caught.value.reason
    assert len(caught.value.reason) < 400


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_no_cookie_goes_from_one_lookup_to_the_next() -> None:
    """One session serves every org's lookups: a cookie an answer set must not ride along
    with the next call (another org's, perhaps)."""
    cookies_seen: list[str | None] = []

    async def profile(request: Request) -> Response:
        cookies_seen.append(request.headers.get("cookie"))
        response = JSONResponse({"id": ADA, "username": "ada", "name": "Ada"})
        response.set_cookie("session", "org-a-secret")
        return response

    app = Starlette(routes=[Route("/v24.0/{igsid}", profile)])
    async with serving(app) as base, create_graph_session() as session:
        # A host name: a cookie jar keeps no cookie for an IP address anyway.
        client = GraphClient(session, f"{base.replace('127.0.0.1', 'localhost')}/v24.0")
        for _ in range(2):
            found = await client.fetch_profile(ADA, TOKEN)
            assert found.username == "ada"
    assert cookies_seen == [None, None]
