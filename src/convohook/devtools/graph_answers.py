"""What the Graph API stand-ins share: Meta's error shape, injected faults, the version in a
path, a JSON body read strictly."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

FaultMode = Literal["down", "slow", "error"]
VERSION = re.compile(r"v\d+\.\d+")


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected failure: `remaining` requests left, None meaning until reset."""

    mode: FaultMode
    delay: float
    remaining: int | None

    def as_json(self) -> dict[str, object]:
        return {"mode": self.mode, "delay": self.delay, "count": self.remaining}


def meta_error(
    message: str,
    *,
    code: int,
    status: int = 400,
    subcode: int | None = None,
    error_type: str = "OAuthException",
    transient: bool | None = None,
) -> JSONResponse:
    """An error answer in the shape the Graph API uses."""
    error: dict[str, object] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if transient is not None:
        error["is_transient"] = transient
    error["fbtrace_id"] = "A" + secrets.token_urlsafe(16)
    return JSONResponse({"error": error}, status_code=status)


def bad_request(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


async def json_body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return bad_request("the body must be a JSON object")
    if not isinstance(data, dict):
        return bad_request("the body must be a JSON object")
    return data
