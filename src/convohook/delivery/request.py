"""What goes on the wire for one attempt: body in the webhook's format and every header (pure)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from convohook.delivery.signing import webhook_headers
from convohook.domain.model import DueDelivery
from convohook.domain.payload import EventFacts, standard_envelope

# Headers a user may not set: they belong to HTTP itself or to the signature scheme.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "transfer-encoding",
        "connection",
        "upgrade",
        "te",
        "trailer",
        "keep-alive",
        "proxy-authorization",
        "authorization",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "user-agent",
    }
)
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_HEADERS = 20


def check_custom_headers(headers: Mapping[str, str]) -> str | None:
    """Why these custom headers are refused, or None. Guards against header injection."""
    if len(headers) > MAX_HEADERS:
        return f"at most {MAX_HEADERS} custom headers"
    for name, value in headers.items():
        if not name or any(c not in _TOKEN for c in name):
            return f"{name!r} is not a valid header name (letters, digits and -_.!#$%&'*+^`|~)"
        if name.lower() in RESERVED_HEADERS:
            hint = " (use auth for authorization)" if name.lower() == "authorization" else ""
            return f"{name!r} is set by convohook and cannot be overridden{hint}"
        if any(c in value for c in "\r\n\0") or len(value) > 4096:
            return f"the value of {name!r} must be one line of at most 4096 characters"
    return None


def authorization(auth_type: str | None, auth_value: str | None) -> str | None:
    if auth_type is None or auth_value is None:
        return None
    if auth_type == "basic":
        return "Basic " + base64.b64encode(auth_value.encode()).decode()
    return f"Bearer {auth_value}"


@dataclass(frozen=True, slots=True)
class OutgoingRequest:
    body: bytes
    headers: dict[str, str]

    def headers_for_log(self, user_agent: str) -> dict[str, str]:
        """The headers as sent, for the attempt log: credentials are never stored in clear."""
        logged = {"User-Agent": user_agent, **self.headers}
        for name, value in logged.items():
            if name.lower() == "authorization":
                scheme = value.split(" ", 1)[0]
                logged[name] = f"{scheme} ••••••"
        return logged


def build_request(due: DueDelivery, timestamp_s: int) -> OutgoingRequest:
    body = due.payload
    # Operational events are already Standard Webhooks envelopes.
    if due.format == "standard" and due.event_type.startswith("conversation."):
        body = standard_envelope(
            due.payload,
            EventFacts(
                event_id=due.event_id,
                event_type=due.event_type,
                created_at_ms=due.event_created_at_ms,
                reason=due.reason,
                conversation_id=due.conversation_id,
                igsid=due.igsid,
                first_message_text=due.first_message_text,
                first_message_at_ms=due.first_message_at_ms,
                details=orjson.loads(due.details) if due.details else None,
            ),
        )
    headers = dict(due.headers)
    auth = authorization(due.auth_type, due.auth_value)
    if auth is not None:
        headers["Authorization"] = auth
    # Signed last, over the exact bytes sent: custom headers cannot replace the signature.
    headers.update(webhook_headers(due.secrets, due.id, timestamp_s, body))
    return OutgoingRequest(body=body, headers=headers)
