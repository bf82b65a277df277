"""The DoubleTick body, byte for byte, and the ids it carries."""

from __future__ import annotations

import random

import orjson

from convohook.domain.ids import is_customer_id, new_customer_id, new_id
from convohook.domain.payload import (
    CustomerProfile,
    EventFacts,
    conversation_assigned_body,
    conversation_closed_body,
    conversation_opened_body,
    standard_envelope,
)

EXPECTED = (
    b'{"to":"acme_store","from":"jane.doe","handle":"jane.doe","contact":{"name":"Jane Doe"},'
    b'"channelType":"INSTAGRAM","customerName":"Jane Doe","dtCustomerId":"customer_Ab3dE5gH9k",'
    b'"channelHandle":"acme_store","customerPhone":"jane.doe","integrationType":"INSTAGRAM",'
    b'"conversationOpened":true}'
)


def test_opened_body_is_exact() -> None:
    body = conversation_opened_body(
        business_handle="acme_store",
        profile=CustomerProfile(username="jane.doe", name="Jane Doe"),
        customer_id="customer_Ab3dE5gH9k",
    )
    assert body == EXPECTED


def test_key_order_and_no_other_keys() -> None:
    body = orjson.loads(EXPECTED)
    assert list(body) == [
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


def test_display_name_falls_back_to_username() -> None:
    body = orjson.loads(
        conversation_opened_body(
            business_handle="b",
            profile=CustomerProfile(username="nameless", name=None),
            customer_id="customer_0000000000",
        )
    )
    assert body["customerName"] == "nameless"
    assert body["contact"] == {"name": "nameless"}


def test_non_ascii_is_sent_as_utf8_not_escaped() -> None:
    body = conversation_opened_body(
        business_handle="b",
        profile=CustomerProfile("zoë", "Zoë 🌸"),
        customer_id="customer_0000000000",
    )
    assert "Zoë 🌸".encode() in body


def test_closed_body_mirrors_opened() -> None:
    body = orjson.loads(
        conversation_closed_body(
            business_handle="b",
            profile=CustomerProfile("u", "N"),
            customer_id="customer_0000000000",
        )
    )
    assert body["conversationOpened"] is False
    assert body["conversationClosed"] is True


def test_customer_ids_have_the_doubletick_shape() -> None:
    ids = {new_customer_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(is_customer_id(i) for i in ids)


def test_ids_sort_by_time() -> None:
    assert new_id("x", 1_000) < new_id("x", 1_001) < new_id("x", 2**40)


def test_ulid_encoding_matches_crockford_digit_by_digit() -> None:
    from convohook.domain.ids import _CROCKFORD, encode_ulid

    def by_digits(value: int) -> str:
        chars = []
        for _ in range(26):
            chars.append(_CROCKFORD[value & 31])
            value >>= 5
        return "".join(reversed(chars))

    rng = random.Random(7)
    for value in [0, 1, 31, 32, 2**128 - 1, *(rng.getrandbits(128) for _ in range(500))]:
        assert encode_ulid(value) == by_digits(value)


def test_assigned_body_is_the_opened_keys_not_opening_then_the_assignee() -> None:
    ada = {"id": "usr_1", "name": "Ada", "email": "ada@acme.test"}
    profile = CustomerProfile(username="jane.doe", name="Jane Doe")
    body = conversation_assigned_body(
        business_handle="acme_store",
        profile=profile,
        customer_id="customer_Ab3dE5gH9k",
        assignee=ada,
    )
    assert body == EXPECTED.replace(
        b'"conversationOpened":true}',
        b'"conversationOpened":false,"assignee":{"id":"usr_1","name":"Ada","email":"ada@acme.test"}}',
    )
    unassigned = conversation_assigned_body(
        business_handle="acme_store", profile=profile, customer_id="c", assignee=None
    )
    assert orjson.loads(unassigned)["assignee"] is None

    # The extended format adds the event's details after its own fields, without repeating
    # the assignee the body has.
    facts = EventFacts(
        event_id="evt_1",
        event_type="conversation.assigned",
        created_at_ms=0,
        reason=None,
        conversation_id="conv_1",
        igsid="111",
        first_message_text=None,
        first_message_at_ms=None,
        details={"assignee": ada, "previousAssignee": None, "assignedBy": "api"},
    )
    data = orjson.loads(standard_envelope(body, facts))["data"]
    assert list(data)[-2:] == ["previousAssignee", "assignedBy"]
    assert (data["assignee"], data["previousAssignee"], data["assignedBy"]) == (ada, None, "api")
