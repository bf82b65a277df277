"""One error shape for every 4xx/5xx: {"error": code, "message": what went wrong and what to do}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount
from starlette.types import Scope

from convohook.storage.errors import ConflictError
from convohook.usecases.errors import Invalid, NotFound, UseCaseError

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_error",
    503: "unavailable",
}


class FieldError(BaseModel):
    field: str = Field(description="the invalid field, dotted (`auth.token`, `limit`)")
    message: str


class ErrorBody(BaseModel):
    """What every 4xx/5xx answer carries (documented in the OpenAPI schema; built by
    `error_response`)."""

    error: str = Field(
        description="a stable code: bad_request, unauthorized, not_found, conflict, "
        "validation_error, ..."
    )
    message: str = Field(description="what went wrong, and what to do about it")
    details: list[FieldError] | None = Field(
        default=None, description="validation errors only: each invalid field and why"
    )


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, str]] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.details = details

    @classmethod
    def invalid(cls, field: str, problem: str) -> ApiError:
        """A 422 about one field, said as FastAPI's validation errors are: `details` names it."""
        return cls(422, f"{field}: {problem}", details=[{"field": field, "message": problem}])


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": _CODES.get(status, "error"), "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    extra = {} if exc.details is None else {"details": exc.details}
    return error_response(exc.status, exc.message, headers=exc.headers, **extra)


_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def allowed_methods(request: Request) -> list[str]:
    """Every method that some route of the app takes at this path. Starlette's own 405 names
    only those of the first route whose path matches, and FastAPI makes one route per method:
    so each method is tried against the whole route table. Mounts are left out: they take
    every method and may refuse some themselves."""
    routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
    allowed = []
    for method in _METHODS:
        probe: Scope = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
            "headers": [],
        }
        if any(route.matches(dict(probe))[0] == Match.FULL for route in routes):
            allowed.append(method)
    return allowed


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        # The only mounted apps serve static files, which refuse all but GET and HEAD.
        allow = ", ".join(allowed_methods(request)) or "GET, HEAD"
        return error_response(
            405,
            f"{request.method} is not allowed on {request.url.path}: use {allow}",
            headers={**(exc.headers or {}), "Allow": allow},
        )
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, UnicodeDecodeError):
        # FastAPI could not even decode the JSON body.
        return error_response(
            400,
            f"body: not UTF-8 ({cause.reason} at byte {cause.start}): send JSON encoded as UTF-8",
        )
    if exc.status_code == 404 and exc.detail == "Not Found":
        # No route at all (Starlette's own words would say only "Not Found").
        return error_response(
            404,
            f"nothing at {request.url.path}: the API is under /api/v1 (its operations are listed "
            "at /api/docs), Meta's callback is /webhooks/instagram, the web UI starts at /",
            headers=exc.headers,
        )
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _field_error(error: Mapping[str, Any]) -> dict[str, str]:
    """One invalid field, named, and what is wrong with it. A body that is not a JSON object at
    all is said to be so, as `body` (FastAPI names a JSON syntax error by its position)."""
    loc = tuple(error.get("loc", ()))
    kind = error.get("type")
    if kind == "json_invalid":
        reason = str(error.get("ctx", {}).get("error", "syntax error"))
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        problem = f"not valid JSON ({reason[:1].lower()}{reason[1:]}{at}): send a JSON object"
        return {"field": "body", "message": problem}
    if loc == ("body",):
        if kind == "missing":
            return {"field": "body", "message": "missing: send a JSON object"}
        if isinstance(error.get("input"), bytes):
            return {
                "field": "body",
                "message": "not JSON: send a JSON object with Content-Type: application/json",
            }
        if kind in ("model_type", "model_attributes_type", "dict_type"):
            kind_given = _json_kind(error.get("input"))
            return {"field": "body", "message": f"must be a JSON object, not {kind_given}"}
    message = str(error.get("msg", ""))
    if kind == "value_error":  # ours: pydantic would prefix "Value error, "
        message = str(error.get("ctx", {}).get("error", message))
        field, sep, problem = message.partition(": ")
        if loc == ("body",) and sep and field.isidentifier():
            # A rule across fields (a model's validator) names the field to change first.
            return {"field": field, "message": problem}
    elif isinstance(kind, str) and kind.endswith("_type") and "input" in error:
        message = f"{message}, not {_json_kind(error['input'])}"
    return {"field": _location(loc), "message": message}


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null" if value is None else type(value).__name__


async def handle_use_case_error(request: Request, exc: Exception) -> Response:
    """A use case's refusal: the same message whichever door the request came in by."""
    if isinstance(exc, NotFound):
        return error_response(404, exc.message)
    if isinstance(exc, Invalid):
        return error_response(
            422, exc.message, details=[{"field": exc.field, "message": exc.problem}]
        )
    assert isinstance(exc, UseCaseError)
    return error_response(409, exc.message)


async def handle_storage_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ConflictError):
        # A uniqueness rule hit by a change made at the same moment as this one.
        return error_response(409, "a change made at the same moment conflicts: try again")
    return error_response(503, "the database is not available right now: try again shortly")


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [_field_error(e) for e in exc.errors()]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return error_response(422, message, details=details)
