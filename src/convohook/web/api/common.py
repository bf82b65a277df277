"""What every /api/v1 router shares: the services, the caller's org (bearer API key), pagination,
the documented error answers, and the base models of requests and responses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from convohook.domain.model import Org
from convohook.domain.payload import iso_ms
from convohook.domain.text import NUL_MESSAGE, has_nul
from convohook.runtime.services import Services
from convohook.usecases.orgs import API_KEY_PREFIX, org_for_api_key
from convohook.web.errors import ApiError, ErrorBody

PREFIX = "/api/v1"  # on each resource's router, so that each route's own path is its full one
T = TypeVar("T")
ItemT = TypeVar("ItemT", bound=BaseModel)
MAX_PAGE = 200
# In the document, every string a client sends says it cannot hold NUL (see domain/text.py).
NO_NUL = r"^[^\x00]*$"


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


# Declares the scheme in the OpenAPI document (`bearer`, applied to every operation); the
# answers to a missing or malformed header are our own, below, not FastAPI's.
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An organisation's API key (`convohook orgs create --name NAME` prints one), "
    "sent as `Authorization: Bearer chk_…`",
    auto_error=False,
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="convohook"'}
_HOW = "send 'Authorization: Bearer <api_key>'"


def _refusal(header: str | None) -> str:
    """Why an Authorization header that is not 'Bearer <key>' is refused, and what to send."""
    if not header or not header.strip():
        return f"missing API key: {_HOW} (create one with `convohook orgs create --name NAME`)"
    value = header.strip()
    if value.startswith(API_KEY_PREFIX):
        return (
            "malformed Authorization header: the API key must follow 'Bearer ': "
            f"send 'Authorization: Bearer {API_KEY_PREFIX}…', not the key alone"
        )
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and not rest.strip():
        return f"malformed Authorization header: no API key after 'Bearer': {_HOW}"
    return f"malformed Authorization header: its scheme must be Bearer, not {scheme[:20]!r}: {_HOW}"


async def current_org(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Org:
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(401, _refusal(request.headers.get("authorization")), headers=_CHALLENGE)
    org = await services_of(request).db.read(org_for_api_key, credentials.credentials.strip())
    if org is None:
        raise ApiError(
            401,
            "unknown API key: check that it is copied whole, or create one with "
            "`convohook orgs create --name NAME`",
            headers=_CHALLENGE,
        )
    return org


OrgDep = Annotated[Org, Depends(current_org)]
SvcDep = Annotated[Services, Depends(services_of)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="items per page")]
Cursor = Annotated[
    str | None,
    Query(pattern=NO_NUL, description="the `next` of the previous page; absent for the first"),
]
Filter = Annotated[str | None, Query(pattern=NO_NUL)]
ObjectId = Annotated[str, Path(pattern=NO_NUL, description="the object's id")]


async def check_parameters(request: Request, org: OrgDep) -> None:
    """Path and query parameters with a NUL character are invalid (PostgreSQL cannot even
    compare with one): a 422 on either backend, with this message rather than a pattern's.
    A query parameter is one value: given twice, which one was meant is unknown (FastAPI would
    silently take the last). After authentication, so that a stranger learns nothing but 401."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if has_nul(value):
            raise ApiError.invalid(name, NUL_MESSAGE)
    for name in request.query_params:
        if (count := len(request.query_params.getlist(name))) > 1:
            raise ApiError.invalid(name, f"given {count} times: send it once")


_ERRORS = {
    400: "the body could not be read: send JSON, encoded as UTF-8",
    401: "no API key, a malformed Authorization header or an unknown key: "
    "send 'Authorization: Bearer <api_key>'",
    404: "no such object in your org",
    409: "conflicts with an existing object (the message says which)",
    422: "invalid input: `message` says what is wrong, `details` lists each invalid field "
    "(`body` for a body that is not a JSON object)",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of these error answers, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


def refuse_nul(value: object) -> object:
    """A field validator (before the field's own checks, so that a NUL is named as such rather
    than as a mismatched pattern)."""
    if has_nul(value):
        raise ValueError(NUL_MESSAGE)
    return value


class StrictBody(BaseModel):
    """A request body as the document describes it, no more: unknown fields are refused, and
    types are JSON's own (no `0` for `false`, no `false` for a number, no number for a time:
    `strict`)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class RequestBody(StrictBody):
    """... and no string in it holds NUL. (A model with a discriminator field, which may have
    no such validator, derives from StrictBody and names its own fields.)"""

    _no_nul = field_validator("*", mode="before")(refuse_nul)


def _whole_number(value: object) -> object:
    # JSON Schema's integer is a number without a fraction, 5.0 included; `strict` alone would
    # refuse that one (and rightly refuses true, "5" and 5.5).
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Last in an Annotated type, after the Field() of constraints (it then wraps them, and runs
# first; before them, it would hide them from the JSON schema): `Annotated[int, Field(), WHOLE]`.
WHOLE = BeforeValidator(_whole_number)


class Answer(BaseModel):
    """A success answer: its schema in the document lists every key (no others appear)."""

    model_config = ConfigDict(extra="forbid")


class Page(Answer, Generic[ItemT]):
    items: list[ItemT]
    next: str | None = Field(
        description="pass it as `?cursor=` for the next page; null on the last page"
    )


PageT = TypeVar("PageT", bound=Page[Any])


def page(
    answer: type[PageT],
    rows: Sequence[T],
    limit: int,
    render: Callable[[T], BaseModel],
    key: Callable[[T], str],
) -> PageT:
    """Rows were fetched with limit+1: the extra one only says whether there is a next page."""
    items = list(rows[:limit])
    return answer(
        items=[render(r) for r in items],
        next=key(items[-1]) if len(rows) > limit and items else None,
    )


def iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-25T09:50:00.000Z"])
]
