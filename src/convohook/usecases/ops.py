"""Operational events: what an operator must hear about, sent to the org's operations webhooks.

`webhook.disabled` (410 Gone, or failing for the health window) and `delivery.exhausted` (every
scheduled attempt failed) are written to the outbox like conversation events and delivered to
every webhook of the org subscribed to them (no channel needed). Nothing is emitted about the
deliveries of operational events themselves, so a broken operations endpoint cannot feed itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from convohook.domain.ids import new_id
from convohook.domain.payload import iso_ms
from convohook.storage.base import Transaction

WEBHOOK_DISABLED = "webhook.disabled"
DELIVERY_EXHAUSTED = "delivery.exhausted"
OPS_EVENTS = (WEBHOOK_DISABLED, DELIVERY_EXHAUSTED)


def emit_ops_event(
    tx: Transaction, *, org_id: str, event_type: str, data: dict[str, Any], now_ms: int
) -> str:
    event_id = new_id("evt", now_ms)
    payload = orjson.dumps(
        {"type": event_type, "timestamp": iso_ms(now_ms), "data": {"eventId": event_id, **data}}
    )
    tx.insert_event(
        event_id=event_id,
        org_id=org_id,
        channel_id="",
        event_type=event_type,
        conversation_id="",
        contact_id="",
        reason=None,
        payload=payload,
        profile_deadline_ms=now_ms,
        first_message_text=None,
        first_message_at_ms=None,
        now_ms=now_ms,
    )
    webhooks = tx.ops_webhooks_for(org_id, event_type)
    tx.insert_deliveries(
        [(new_id("msg", now_ms), webhook.id) for webhook in webhooks], event_id, org_id, now_ms
    )
    return event_id
