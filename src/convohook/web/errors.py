"""One error shape for every 4xx/5xx: {"error": code, "message": what went wrong and what to do}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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
    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": _CODES.get(status, "error"), "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, headers=exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


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
    details = [
        {"field": _location(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    message = "; ".join(f"{d['field']}: {d['message']}" for d in details) or "invalid request"
    return error_response(422, message, details=details)
