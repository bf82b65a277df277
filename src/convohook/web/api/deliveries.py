"""A webhook's deliveries and their attempts (listed under /webhooks/{id}/deliveries), and
/api/v1/deliveries/{id}/retry."""

from __future__ import annotations

from typing import Any, Literal, cast

import orjson
from fastapi import APIRouter
from pydantic import Field

from convohook.domain.model import Attempt, Delivery
from convohook.domain.payload import iso_ms
from convohook.usecases.delivery import retry_now
from convohook.web.api.common import (
    PREFIX,
    Answer,
    ObjectId,
    OrgDep,
    Page,
    SvcDep,
    Timestamp,
    errors,
    iso,
)

DeliveryStatus = Literal["pending", "sending", "succeeded", "failed"]


class AttemptOut(Answer):
    attempt: int = Field(description="1 for the first")
    attempted_at: Timestamp
    url: str
    status_code: int | None = Field(description="null when no answer came")
    response_body: str | None = Field(description="truncated to 20 KB")
    duration_ms: float
    error: str | None
    error_class: str | None = Field(description="timeout, connect, …; null for an HTTP answer")
    request_headers: dict[str, str] | None = Field(description="as sent, with Authorization masked")
    request_body: str | None = Field(
        description="null when the delivery's `payload` was sent as it is; the exact bytes "
        "otherwise (the standard format's envelope)"
    )


class DeliveryOut(Answer):
    id: str = Field(description="also the `webhook-id` header: the same on every attempt")
    event_id: str
    event_type: str
    webhook_id: str
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: Timestamp | None = Field(
        description="while pending; null while its event waits for the customer's profile"
    )
    last_status_code: int | None
    last_error: str | None
    payload: Any = Field(
        description="the event's body, parsed (text if it is not JSON; null until it is known)"
    )
    created_at: Timestamp
    updated_at: Timestamp
    attempts: list[AttemptOut]


class DeliveryPage(Page[DeliveryOut]):
    pass


def json_or_text(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def attempt_out(a: Attempt) -> AttemptOut:
    return AttemptOut(
        attempt=a.attempt_number,
        attempted_at=iso_ms(a.attempted_at_ms),
        url=a.url,
        status_code=a.status_code,
        response_body=a.response_body,
        duration_ms=round(a.duration_ms, 3),
        error=a.error,
        error_class=a.error_class,
        request_headers=a.request_headers,
        request_body=a.request_body,
    )


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        webhook_id=d.webhook_id,
        status=cast(DeliveryStatus, d.status),
        attempt_count=d.attempt_count,
        next_attempt_at=iso(d.next_attempt_at_ms) if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        payload=json_or_text(d.payload),
        created_at=iso_ms(d.created_at_ms),
        updated_at=iso_ms(d.updated_at_ms),
        attempts=[attempt_out(a) for a in d.attempts],
    )


router = APIRouter(prefix=PREFIX, tags=["deliveries"])


@router.post("/deliveries/{delivery_id}/retry", status_code=202, responses=errors(404))
async def retry_delivery(delivery_id: ObjectId, org: OrgDep, svc: SvcDep) -> DeliveryOut:
    """Send it again now, whatever its state."""
    delivery = await svc.db.run(retry_now, org.id, delivery_id, svc.clock())
    svc.signals.deliveries.notify()
    return delivery_out(delivery)
