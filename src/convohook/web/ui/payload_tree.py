"""A received JSON body as a readable tree, with each Conversation Opened field explained
(Bot Studio's "View Response Data"), and which event it carries, for the capture's heading.
Pure: no I/O, no templates."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import orjson

# Keyed by the field's path in the DoubleTick body; the extended format nests the same fields
# under `data`, so `data.` is dropped before the lookup.
FIELD_NOTES: dict[str, str] = {
    "to": "Your Instagram business handle: the channel the customer wrote to.",
    "from": "The customer's Instagram username.",
    "handle": "The customer's Instagram username again (same as from).",
    "contact": "The customer, as a contact.",
    "contact.name": "The customer's name on Instagram; their username when they have set none.",
    "channelType": "Always INSTAGRAM for this webhook.",
    "customerName": "The customer's name (same as contact.name).",
    "dtCustomerId": "The customer's id: the same for ever, in every later opening too. "
    "Store it to recognise returning customers; the Inbox shows it on the contact.",
    "channelHandle": "Your business handle again (same as to).",
    "customerPhone": "Instagram shares no phone numbers: this is the customer's username, so "
    "flows keyed on a phone field keep working.",
    "integrationType": "Always INSTAGRAM.",
    "conversationOpened": "true: the customer messaged for the very first time, or again after "
    "their last conversation was marked as done.",
    "conversationClosed": "true: the conversation was marked as done (convohook's addition; "
    "sent only to webhooks subscribed to Conversation Closed).",
    "assignee": "Whom the conversation is now assigned to (an agent: id, name, email); null "
    "once unassigned (convohook's addition, sent to webhooks subscribed to Conversation "
    "Assigned).",
    "assignee.id": "The agent's id in convohook (GET /api/v1/agents).",
    "assignee.name": "The agent's name.",
    "assignee.email": "The agent's email.",
    "previousAssignee": "Extended format: whom it was assigned to before; null if nobody.",
    "assignedBy": "Extended format: who assigned it: a user's id (in the Inbox), api or bot.",
    "type": "Extended format: the event: conversation.opened, conversation.closed or "
    "conversation.assigned.",
    "timestamp": "Extended format: when the event happened (ISO 8601, UTC).",
    "data": "Extended format: the DoubleTick fields, plus the event's own below.",
    "eventId": "Extended format: the event's id, the same on every retry.",
    "reason": "Extended format: why it opened (first_message, or reopened after a conversation "
    "marked done) or closed (manual: a person; inactivity: the channel's auto_done_after; bot).",
    "conversationId": "Extended format: the conversation's id in convohook (see the Inbox).",
    "igsid": "Extended format: the customer's Instagram-scoped id, as Meta sends it.",
    "firstMessage": "Extended format: the message that opened the conversation.",
    "firstMessage.text": "Its text (null for photos, voice notes and other attachments).",
    "firstMessage.timestamp": "When the customer sent it, by Instagram's clock.",
}


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    path: str
    kind: str  # object | array | string | number | boolean | null
    text: str  # the value as JSON, for scalars
    note: str | None
    children: list[Node] = field(default_factory=list)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number" if isinstance(value, int | float) else "string"


def _note(path: str, enveloped: bool) -> str | None:
    if enveloped and path.startswith("data."):
        return FIELD_NOTES.get(path.removeprefix("data."))
    if path in ("type", "timestamp", "data") and not enveloped:
        return None  # only meaningful as the envelope's own keys
    return FIELD_NOTES.get(path)


def _node(key: str, path: str, value: Any, enveloped: bool) -> Node:
    kind = _kind(value)
    items: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(str(i), v) for i, v in enumerate(value)]
    return Node(
        key=key,
        path=path,
        kind=kind,
        text="" if items or kind in ("object", "array") else orjson.dumps(value).decode(),
        note=_note(path, enveloped),
        children=[_node(k, f"{path}.{k}" if path else k, v, enveloped) for k, v in items],
    )


def json_tree(body: str) -> list[Node] | None:
    """The top-level fields of a JSON object or array body; None when it is not JSON."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict | list):
        return [_node("", "", value, False)]
    enveloped = isinstance(value, dict) and {"type", "data"} <= value.keys()
    return _node("", "", value, enveloped).children


@dataclass(frozen=True, slots=True)
class Event:
    """What a captured body says it is, when it is one of convohook's payloads."""

    type: str  # conversation.opened, conversation.closed, conversation.assigned, ...
    handle: str | None  # the customer's username, when the body names one


def event_of(body: str, known: Collection[str]) -> Event | None:
    """The event a body carries: DoubleTick's format says it with `conversationOpened`,
    `conversationClosed` or an `assignee` key, and names the customer in `handle`; the standard
    format has `type` and `data.handle`. None for anything else (a capture URL takes whatever
    anyone POSTs)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    fields: Any = value
    if value.get("conversationClosed") is True:  # its conversationOpened is false
        event = "conversation.closed"
    elif value.get("conversationOpened") is True:
        event = "conversation.opened"
    elif value.get("conversationOpened") is False and "assignee" in value:
        event = "conversation.assigned"
    elif value.get("type") in known and isinstance(value.get("data"), dict):
        event, fields = value["type"], value["data"]
    else:
        return None
    handle = fields.get("handle")
    return Event(event, handle if isinstance(handle, str) and handle.strip() else None)
