"""A local stand-in for the Instagram Graph API (User Profile and Send APIs), so tests and the
demo can play Meta.

Nothing outside the machine is reachable in tests and demos, yet the service must look profiles
up and send replies over HTTP exactly as in production. This app answers
`GET /{version}/{igsid}?fields=…&access_token=…` and `POST /{version}/{account_id}/messages`
the way graph.instagram.com does, Meta's error JSON included; after a reply is taken it posts
Meta's signed echo to convohook's callback (when told where: `SendState.echo_to`), so a reply
makes the real round trip. `/_standin/…` admin endpoints register profiles, inject faults and
count what was served:

    PUT  /_standin/profiles/{igsid}   {"username": str, "name": str | null, and optionally
                                       "follower_count": int, "is_user_follow_business": bool,
                                       "is_verified_user": bool}
    GET  /_standin/profiles           {"items": [{"id", "username", "name"}, …]}
    POST /_standin/faults             {"mode": "ok" | "down" | "slow" | "error",
                                       "delay": seconds, "count": n | null}
    GET  /_standin/faults             the fault in force
    GET  /_standin/requests           {"count": n, "by_igsid": {igsid: n}}
    POST /_standin/send-faults        {"mode": "ok" | "throttle" | "down" | "refuse" | "hang",
                                       "delay": seconds, "count": n | null}: the Send API's
    GET  /_standin/sent               {"items": [{"account_id", "recipient", "text", "mid",
                                       "tag"}, …]}: every reply taken

State lives in a ProfileRegistry owned by one app instance, so parallel tests never share it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from typing import cast

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from convohook.devtools.graph_answers import (
    VERSION,
    Fault,
    FaultMode,
    bad_request,
    json_body,
    meta_error,
)
from convohook.devtools.send_standin import (
    SEND_FAULT_MODES,
    SendFaultMode,
    SendState,
    send_message,
)
from convohook.domain.payload import CustomerProfile

FAULT_MODES = ("ok", "down", "slow", "error")
DEFAULT_SLOW_DELAY = 10.0
# A typo such as 3600 for 3.6 would otherwise hang every lookup, and the test waiting on it.
MAX_DELAY = 600.0
REGISTER_TIMEOUT = 10.0

# What the User Profile API offers on an IGSID; anything else is an error at Meta too.
KNOWN_FIELDS = frozenset(
    {
        "id",
        "name",
        "username",
        "profile_pic",
        "is_verified_user",
        "follower_count",
        "is_user_follow_business",
        "is_business_follow_user",
    }
)
_VERSION_SUFFIX = re.compile(r"/v\d+\.\d+$")


class ProfileRegistry:
    """The stand-in's state: profiles by IGSID, the fault in force, and lookups served; `send`
    is the Send API's."""

    def __init__(self, profiles: Mapping[str, CustomerProfile] | None = None) -> None:
        self._profiles: dict[str, CustomerProfile] = dict(profiles or {})
        self._fault: Fault | None = None
        self._served: Counter[str] = Counter()
        self.send = SendState()

    def put(
        self,
        igsid: str,
        username: str,
        name: str | None = None,
        *,
        follower_count: int | None = None,
        is_user_follow_business: bool | None = None,
        is_verified_user: bool | None = None,
    ) -> CustomerProfile:
        """None: a field the customer does not share (left out of the answer, as Meta does)."""
        profile = CustomerProfile(
            username=username,
            name=name,
            follower_count=follower_count,
            is_user_follow_business=is_user_follow_business,
            is_verified_user=is_verified_user,
        )
        self._profiles[igsid] = profile
        return profile

    def get(self, igsid: str) -> CustomerProfile | None:
        return self._profiles.get(igsid)

    @property
    def profiles(self) -> dict[str, CustomerProfile]:
        return dict(self._profiles)

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def set_fault(self, mode: FaultMode, *, delay: float = 0.0, count: int | None = None) -> Fault:
        self._fault = Fault(mode, delay, count)
        return self._fault

    def clear_fault(self) -> None:
        self._fault = None

    def take_fault(self) -> Fault | None:
        """The fault for the request being served, counting it against `remaining`."""
        fault = self._fault
        if fault is None or fault.remaining is None:
            return fault
        left = fault.remaining - 1
        self._fault = Fault(fault.mode, fault.delay, left) if left > 0 else None
        return fault

    def record_request(self, igsid: str) -> None:
        self._served[igsid] += 1

    @property
    def requests_served(self) -> int:
        return sum(self._served.values())

    def requests_for(self, igsid: str) -> int:
        return self._served[igsid]

    @property
    def requests_by_igsid(self) -> dict[str, int]:
        return dict(self._served)


def igsid_for_username(username: str) -> str:
    """A stable 16-digit numeric IGSID for a username, so one simulated customer keeps one id.

    Instagram usernames are case-insensitive and often written with a leading @, so neither
    changes the result.
    """
    normalized = username.strip().removeprefix("@").lower()
    if not normalized:
        raise ValueError("a username is needed to derive an IGSID")
    digest = int.from_bytes(hashlib.sha256(normalized.encode()).digest()[:8], "big")
    # Offset into [10^15, 10^16) so the id never starts with 0 and always has 16 digits.
    return str(10**15 + digest % (9 * 10**15))


def create_graph_standin(profiles: ProfileRegistry | None = None) -> Starlette:
    """The stand-in app; pass a registry to inspect or seed its state from the test itself."""
    registry = profiles if profiles is not None else ProfileRegistry()

    async def profile(request: Request) -> Response:
        version = request.path_params["version"]
        igsid = request.path_params["igsid"]
        registry.record_request(igsid)
        fault = registry.take_fault()
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.mode == "down":
                return PlainTextResponse("Service Unavailable", status_code=503)
            if fault.mode == "error":
                return meta_error(
                    "An unexpected error has occurred. Please retry your request later.",
                    code=2,
                    status=500,
                    transient=True,
                )
        if not VERSION.fullmatch(version):
            return meta_error(f"Unknown path components: /{version}/{igsid}", code=2500)
        if not request.query_params.get("access_token"):
            return meta_error(
                "An active access token must be used to query information about the current user.",
                code=190,
            )
        found = registry.get(igsid)
        if found is None:
            return meta_error("No matching user found", code=100, subcode=2018001)
        fields = [f.strip() for f in request.query_params.get("fields", "").split(",")]
        fields = [f for f in fields if f]
        unknown = [f for f in fields if f not in KNOWN_FIELDS]
        if unknown:
            return meta_error(
                f"(#100) Tried accessing nonexisting field ({unknown[0]}) on node type (User)",
                code=100,
            )
        values = {k: v for k, v in _profile_json(igsid, found).items() if k != "id"}
        body: dict[str, object] = {}
        for field in fields:
            # Instagram leaves out fields it has no value for, such as an unset name.
            value = values.get(field)
            if value is not None:
                body[field] = value
        # The Graph API always answers with the node's id, asked for or not.
        body["id"] = igsid
        return JSONResponse(body)

    async def put_profile(request: Request) -> Response:
        igsid = request.path_params["igsid"]
        data = await json_body(request)
        if isinstance(data, Response):
            return data
        username = data.get("username")
        name = data.get("name")
        if not isinstance(username, str) or not username.strip():
            return bad_request('"username" must be a non-empty string')
        if name is not None and not isinstance(name, str):
            return bad_request('"name" must be a string or null')
        followers = data.get("follower_count")
        if followers is not None and (
            isinstance(followers, bool) or not isinstance(followers, int)
        ):
            return bad_request('"follower_count" must be an integer or null')
        flags = {k: data.get(k) for k in ("is_user_follow_business", "is_verified_user")}
        for key, flag in flags.items():
            if flag is not None and not isinstance(flag, bool):
                return bad_request(f'"{key}" must be true, false or null')
        saved = registry.put(
            igsid,
            username,
            name,
            follower_count=followers,
            is_user_follow_business=flags["is_user_follow_business"],
            is_verified_user=flags["is_verified_user"],
        )
        return JSONResponse(_profile_json(igsid, saved))

    async def list_profiles(request: Request) -> Response:
        items = [_profile_json(igsid, p) for igsid, p in registry.profiles.items()]
        return JSONResponse({"items": items})

    async def set_faults(request: Request) -> Response:
        data = await json_body(request)
        if isinstance(data, Response):
            return data
        mode = data.get("mode")
        if mode not in FAULT_MODES:
            return bad_request(f'"mode" must be one of {", ".join(FAULT_MODES)}')
        if mode == "ok":
            registry.clear_fault()
            return JSONResponse({"mode": "ok", "delay": 0.0, "count": None})
        delay = data.get("delay")
        if delay is None:
            delay = DEFAULT_SLOW_DELAY if mode == "slow" else 0.0
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            return bad_request('"delay" must be a number of seconds')
        if not 0 <= delay <= MAX_DELAY:
            return bad_request(f'"delay" must be between 0 and {MAX_DELAY:g} seconds')
        count = data.get("count")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            return bad_request('"count" must be a positive integer, or null for until reset')
        fault = registry.set_fault(cast(FaultMode, mode), delay=float(delay), count=count)
        return JSONResponse(fault.as_json())

    async def get_faults(request: Request) -> Response:
        fault = registry.fault
        if fault is None:
            return JSONResponse({"mode": "ok", "delay": 0.0, "count": None})
        return JSONResponse(fault.as_json())

    async def requests_served(request: Request) -> Response:
        return JSONResponse(
            {"count": registry.requests_served, "by_igsid": registry.requests_by_igsid}
        )

    async def send_reply(request: Request) -> Response:
        return await send_message(request, registry.send)

    async def set_send_faults(request: Request) -> Response:
        data = await json_body(request)
        if isinstance(data, Response):
            return data
        mode = data.get("mode")
        if mode not in SEND_FAULT_MODES:
            return bad_request(f'"mode" must be one of {", ".join(SEND_FAULT_MODES)}')
        delay = data.get("delay", 0.0)
        count = data.get("count")
        if isinstance(delay, bool) or not isinstance(delay, int | float):
            return bad_request('"delay" must be a number of seconds')
        if not 0 <= delay <= MAX_DELAY:
            return bad_request(f'"delay" must be between 0 and {MAX_DELAY:g} seconds')
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            return bad_request('"count" must be a positive integer, or null for until reset')
        if mode == "ok":
            registry.send.clear_fault()
        else:
            registry.send.set_fault(cast(SendFaultMode, mode), delay=float(delay), count=count)
        return JSONResponse({"mode": mode, "delay": delay, "count": count})

    async def list_sent(request: Request) -> Response:
        items = [
            {
                "account_id": r.account_id,
                "recipient": r.recipient,
                "text": r.text,
                "mid": r.mid,
                "tag": r.tag,
            }
            for r in registry.send.sent
        ]
        return JSONResponse({"items": items})

    app = Starlette(
        routes=[
            # Admin routes first: `/{version}/{igsid}` would match `/_standin/profiles` too.
            Route("/_standin/profiles", list_profiles, methods=["GET"]),
            Route("/_standin/profiles/{igsid}", put_profile, methods=["PUT"]),
            Route("/_standin/faults", set_faults, methods=["POST"]),
            Route("/_standin/faults", get_faults, methods=["GET"]),
            Route("/_standin/requests", requests_served, methods=["GET"]),
            Route("/_standin/send-faults", set_send_faults, methods=["POST"]),
            Route("/_standin/sent", list_sent, methods=["GET"]),
            Route("/{version}/{igsid}", profile, methods=["GET"]),
            Route("/{version}/{account_id}/messages", send_reply, methods=["POST"]),
        ]
    )
    app.state.registry = registry
    return app


def _profile_json(igsid: str, profile: CustomerProfile) -> dict[str, object]:
    shown: dict[str, object] = {"id": igsid, "username": profile.username, "name": profile.name}
    for key, value in (
        ("follower_count", profile.follower_count),
        ("is_user_follow_business", profile.is_user_follow_business),
        ("is_verified_user", profile.is_verified_user),
    ):
        if value is not None:  # what the customer does not share is not there at all
            shown[key] = value
    return shown


class StandinError(Exception):
    """Registering a profile with the stand-in failed; the message says how to fix it."""


def standin_base_url(graph_url: str) -> str:
    """The stand-in's root from a Graph API URL with or without its version segment."""
    return _VERSION_SUFFIX.sub("", graph_url.rstrip("/"))


async def register_profile(
    graph_url: str,
    igsid: str,
    username: str,
    name: str | None,
    *,
    session: aiohttp.ClientSession | None = None,
    timeout: float = REGISTER_TIMEOUT,
) -> CustomerProfile:
    """PUT a profile into the stand-in at `graph_url` (e.g. http://127.0.0.1:8765/v24.0)."""
    base = standin_base_url(graph_url)
    url = f"{base}/_standin/profiles/{igsid}"
    body: dict[str, object] = {"username": username, "name": name}
    try:
        if session is None:
            async with aiohttp.ClientSession() as own:
                status, text = await _put(own, url, body, timeout)
        else:
            status, text = await _put(session, url, body, timeout)
    except TimeoutError:
        raise StandinError(
            f"the Graph API stand-in at {base} did not answer within {timeout:g} s; is "
            "`convohook demo` (or `convohook graph-standin`) running and responsive there?"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise StandinError(
            f"could not reach the Graph API stand-in at {base} ({type(exc).__name__}: {exc}); "
            "is `convohook demo` (or `convohook graph-standin`) running? Pass --graph-url to "
            "point at it, or --no-register-profile to skip registering."
        ) from None
    if status == 404 or status == 405:
        raise StandinError(
            f"{base} is not a Graph API stand-in (PUT {url} answered {status}); point "
            "--graph-url at `convohook demo`'s SERVER/_demo/graph or at `convohook graph-standin`, "
            "or pass --no-register-profile when the profile exists already."
        )
    if status != 200:
        raise StandinError(f"the Graph API stand-in refused the profile ({status}): {text[:300]}")
    return CustomerProfile(username=username, name=name)


async def _put(
    session: aiohttp.ClientSession, url: str, body: dict[str, object], timeout: float
) -> tuple[int, str]:
    async with session.put(
        url, json=body, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        return response.status, await response.text(errors="replace")
