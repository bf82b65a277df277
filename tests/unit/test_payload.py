"""The DoubleTick body, byte for byte, and the ids it carries."""

from __future__ import annotations

import random

import orjson

from convohook.domain.ids import is_customer_id, new_customer_id, new_id
from convohook.domain.payload import (
    CustomerProfile,
    conversation_closed_body,
    conversation_opened_body,
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
