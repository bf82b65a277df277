"""Bot Studio's readable tree: every DoubleTick field explained, in the body's own order; and a
capture's heading, which says what arrived (event and customer) for convohook's payloads."""

from __future__ import annotations

import orjson
import pytest

from convohook.domain.model import Capture
from convohook.domain.payload import (
    CustomerProfile,
    EventFacts,
    conversation_closed_body,
    conversation_opened_body,
    standard_envelope,
)
from convohook.web.ui.bots import capture_heading
from convohook.web.ui.common import EVENT_LABELS
from convohook.web.ui.payload_tree import Event, event_of, json_tree

BODY = conversation_opened_body(
    business_handle="acme_store",
    profile=CustomerProfile("jane.doe", "Jane Doe"),
    customer_id="customer_AbCdEfGhIj",
)


def test_every_doubletick_field_is_explained_in_order() -> None:
    tree = json_tree(BODY.decode())
    assert tree is not None
    assert [n.key for n in tree] == [
        "to",
        "from",
        "handle",
        "contact",
        "channelType",
        "customerName",
        "dtCustomerId",
        "channelHandle",
        "customerPhone",
        "integrationType",
        "conversationOpened",
    ]
    assert all(n.note for n in tree)
    contact = tree[3]
    assert (contact.kind, contact.children[0].path) == ("object", "contact.name")
    assert contact.children[0].text == '"Jane Doe"'
    assert contact.children[0].note
    opened = tree[-1]
    assert (opened.kind, opened.text) == ("boolean", "true")


def test_the_extended_envelope_is_explained_under_data() -> None:
    facts = EventFacts("evt_1", "conversation.opened", 0, "reopened", "cv_1", "111", None, None)
    tree = json_tree(standard_envelope(BODY, facts).decode())
    assert tree is not None
    assert [n.key for n in tree] == ["type", "timestamp", "data"]
    data = {n.key: n for n in tree[2].children}
    assert data["dtCustomerId"].note
    assert "for ever" in data["dtCustomerId"].note
    assert data["reason"].note
    assert data["firstMessage"].kind == "null"


def test_other_json_is_shown_without_notes_and_non_json_is_not_a_tree() -> None:
    tree = json_tree('{"hello": [1, "two", null], "type": "x"}')
    assert tree is not None
    assert tree[0].kind == "array"
    assert [c.text for c in tree[0].children] == ["1", '"two"', "null"]
    assert all(n.note is None for n in tree)  # `type` alone is not our envelope
    assert json_tree("plain text") is None
    assert json_tree('"just a string"')[0].text == '"just a string"'  # type: ignore[index]


FACTS = EventFacts("evt_1", "conversation.closed", 0, None, "cv_1", "111", None, None)
CLOSED = conversation_closed_body(
    business_handle="acme_store",
    profile=CustomerProfile("jane.doe", "Jane Doe"),
    customer_id="customer_AbCdEfGhIj",
)


@pytest.mark.parametrize(
    ("body", "event"),
    [
        (BODY, Event("conversation.opened", "jane.doe")),
        (CLOSED, Event("conversation.closed", "jane.doe")),  # conversationOpened false, then true
        (standard_envelope(CLOSED, FACTS), Event("conversation.closed", "jane.doe")),
        (
            orjson.dumps({"type": "webhook.disabled", "timestamp": "t", "data": {"id": "wh_1"}}),
            Event("webhook.disabled", None),
        ),
        (b'{"conversationOpened": true, "handle": 7}', Event("conversation.opened", None)),
        (b'{"conversationOpened": true, "handle": "  "}', Event("conversation.opened", None)),
        (b'{"conversationOpened": false, "handle": "jane.doe"}', None),
        (
            b'{"handle": "jane.doe", "conversationOpened": false, "assignee": null}',
            Event("conversation.assigned", "jane.doe"),
        ),
        (b'{"conversationOpened": "true", "handle": "jane.doe"}', None),
        (b'{"type": "invoice.paid", "data": {"handle": "jane.doe"}}', None),  # not ours
        (b'{"type": "conversation.opened", "data": "jane.doe"}', None),
        (b'[{"conversationOpened": true}]', None),
        (b"handle=jane.doe&conversationOpened=true", None),
        (b"", None),
    ],
)
def test_the_event_a_capture_carries(body: bytes, event: Event | None) -> None:
    assert event_of(body.decode(), EVENT_LABELS) == event


def capture(body: bytes | str) -> Capture:
    text = body.decode() if isinstance(body, bytes) else body
    # 2025-11-25 09:50:00 UTC
    return Capture("cap_1", "bot_1", 1_764_064_200_123, "POST", {}, text)


def test_a_captures_heading_says_which_event_and_which_customer() -> None:
    assert capture_heading(capture(BODY)) == (
        "Conversation Opened · @jane.doe · 2025-11-25 09:50:00 UTC"
    )
    assert capture_heading(capture(standard_envelope(CLOSED, FACTS))) == (
        "Conversation Closed · @jane.doe · 2025-11-25 09:50:00 UTC"
    )
    assert capture_heading(capture(b'{"conversationOpened": true}')) == (
        "Conversation Opened · 2025-11-25 09:50:00 UTC"
    )
    long = "x" * 500
    heading = capture_heading(capture(orjson.dumps({"conversationOpened": True, "handle": long})))
    assert heading == f"Conversation Opened · @{'x' * 40}… · 2025-11-25 09:50:00 UTC"


def test_anything_else_is_headed_by_its_method_and_time() -> None:
    assert capture_heading(capture('{"hello": "world"}')) == "POST · 2025-11-25 09:50:00 UTC"
    assert capture_heading(capture("not json")) == "POST · 2025-11-25 09:50:00 UTC"
