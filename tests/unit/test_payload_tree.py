"""Bot Studio's readable tree: every DoubleTick field explained, in the body's own order."""

from __future__ import annotations

from convohook.domain.payload import (
    CustomerProfile,
    EventFacts,
    conversation_opened_body,
    standard_envelope,
)
from convohook.web.ui.payload_tree import json_tree

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
