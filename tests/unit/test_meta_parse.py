"""Parsing Meta notifications: every documented shape classified right, everything else tolerated.

A notification Meta cannot get acknowledged is retried for 36 hours, so the parser must never
fail on content; the only error is a body that is not a JSON object at all.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convohook.domain.inbound import InboundItem, ItemKind, ParsedNotification
from convohook.meta import notifications as build
from convohook.meta.parse import MalformedNotification, parse_notification

FIXTURES = Path(__file__).parent.parent / "fixtures" / "meta"

ACCOUNT = "17841400000000001"
ACCOUNT_2 = "17841400000000002"
C1 = "1234567890123456"
C2 = "1234567890123457"
C3 = "1234567890123458"
MID_PREFIX = (
    "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMDAwMDAwMDAxOjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTg2"
    "MzM1NTk4Nj"
)
TS = 1_718_900_000_000


def mid(n: int) -> str:
    return f"{MID_PREFIX}{n:03d}"


def cdn(asset_id: str) -> str:
    return (
        f"https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={asset_id}&signature=AbzJ4Dk2X0Rq"
    )


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return document


def parse_fixture(name: str) -> ParsedNotification:
    return parse_notification((FIXTURES / f"{name}.json").read_bytes())


def parse(document: Any) -> ParsedNotification:
    return parse_notification(orjson.dumps(document))


def customer_message(
    n: int, text: str | None = None, *, customer: str = C1, kind: ItemKind = ItemKind.MESSAGE
) -> InboundItem:
    return InboundItem(ACCOUNT, kind, customer, TS + n * 1000, mid(n), text)


# One expected item per single-item fixture: the classification table of DESIGN section 2.
SINGLE: dict[str, InboundItem] = {
    "text": customer_message(1, "Hi! Is the blue jacket still available?"),
    "image": customer_message(2),
    "video": customer_message(3),
    "audio": customer_message(4),
    "file": customer_message(5),
    "share": customer_message(6),
    "ig_post": customer_message(7),
    "ig_reel": customer_message(8),
    "story_mention": customer_message(9),
    "story_reply": customer_message(10, "Love this colour!"),
    "quick_reply": customer_message(11, "Yes, in size M"),
    "unsupported": customer_message(12),
    # From an ad: what a bot's `referral` condition reads.
    "message_referral": dataclasses.replace(
        customer_message(13, "Is this in stock?"), referral=True
    ),
    "postback": customer_message(14, "What are your opening hours?", kind=ItemKind.POSTBACK),
    "echo": customer_message(15, "Yes it is! Which size?", kind=ItemKind.ECHO),
    "unsend": InboundItem(ACCOUNT, ItemKind.UNSEND, C1, TS + 16_000, mid(1)),
    "reaction": InboundItem(ACCOUNT, ItemKind.REACTION, C1, TS + 17_000, mid(15)),
    "read": InboundItem(ACCOUNT, ItemKind.READ, C1, TS + 18_000, mid(15)),
    "referral": InboundItem(ACCOUNT, ItemKind.REFERRAL, C1, TS + 19_000, None, referral=True),
    "message_edit": InboundItem(ACCOUNT, ItemKind.EDIT, C1, TS + 20_000, mid(1)),
    "standby": InboundItem(
        ACCOUNT, ItemKind.MESSAGE, C2, TS + 26_000, mid(26), "Hello? Anyone there?", standby=True
    ),
    "dashboard_test": InboundItem(
        "0", ItemKind.MESSAGE, "12334", 1_527_459_824, "random_mid", "random_text"
    ),
}

BATCHED = (
    customer_message(21, "Do you ship to Lisbon?"),
    customer_message(22, customer=C2),
    customer_message(23, "We do, 3-5 days.", kind=ItemKind.ECHO),
    InboundItem(ACCOUNT_2, ItemKind.POSTBACK, C3, TS + 24_000, mid(24), "Track my order"),
    InboundItem(ACCOUNT_2, ItemKind.READ, C3, TS + 25_000, mid(23)),
)


# --- the documented shapes ---------------------------------------------------------------


def test_every_fixture_has_an_expectation() -> None:
    names = {path.stem for path in FIXTURES.glob("*.json")}
    assert names == set(SINGLE) | {"batched"}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_fixture_is_classified_right(name: str) -> None:
    assert parse_fixture(name) == ParsedNotification(items=(SINGLE[name],))


def test_customer_messages_are_exactly_the_message_and_postback_fixtures() -> None:
    opening = {name for name, item in SINGLE.items() if item.is_customer_message}
    not_opening = {"echo", "unsend", "reaction", "read", "referral", "message_edit"}
    assert opening == set(SINGLE) - not_opening


def test_batched_notification_keeps_every_item_in_order() -> None:
    parsed = parse_fixture("batched")
    assert parsed.items == BATCHED
    assert parsed.skipped == ()
    assert {item.account_id for item in parsed.items} == {ACCOUNT, ACCOUNT_2}


def test_echo_customer_is_the_recipient() -> None:
    document = load("echo")
    (raw,) = document["entry"][0]["messaging"]
    assert raw["sender"]["id"] == ACCOUNT
    (item,) = parse(document).items
    assert item.customer_igsid == raw["recipient"]["id"] == C1


def test_standby_items_are_flagged_and_messaging_items_are_not() -> None:
    text = build.text_message(C1, ACCOUNT, "m1", TS, "hi")
    both = build.entry(ACCOUNT, [text]) | {"standby": [text]}
    parsed = parse(build.notification([both]))
    assert [item.standby for item in parsed.items] == [False, True]


def test_echo_of_a_deleted_business_message_is_still_an_echo() -> None:
    raw = build.echo(ACCOUNT, C1, "m1", TS, "oops")
    raw["message"]["is_deleted"] = True
    (item,) = parse(build.notification([build.entry(ACCOUNT, [raw])])).items
    assert item.kind is ItemKind.ECHO
    assert item.customer_igsid == C1


def test_postback_with_referral_is_a_postback_and_message_with_referral_a_message() -> None:
    tap = build.postback(C1, ACCOUNT, "m1", TS, "Hours?", "HOURS")
    tap["postback"]["referral"] = {"ref": "x", "source": "SHORTLINKS", "type": "OPEN_THREAD"}
    text = build.text_message(C1, ACCOUNT, "m2", TS, "hi")
    text["referral"] = {"ref": "x", "source": "SHORTLINKS", "type": "OPEN_THREAD"}
    parsed = parse(build.notification([build.entry(ACCOUNT, [tap, text])]))
    assert [item.kind for item in parsed.items] == [ItemKind.POSTBACK, ItemKind.MESSAGE]


def test_unknown_item_type_is_other_not_an_error() -> None:
    raw = {"sender": {"id": C1}, "recipient": {"id": ACCOUNT}, "timestamp": TS, "optin": {}}
    (item,) = parse(build.notification([build.entry(ACCOUNT, [raw])])).items
    assert item == InboundItem(ACCOUNT, ItemKind.OTHER, C1, TS, None)
    assert not item.is_customer_message


# --- the dashboard "Test" button -----------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "standby"),
    [
        ("messages", False),
        ("messaging_postbacks", False),
        ("message_reactions", False),
        ("messaging_seen", False),
        ("messaging_referral", False),
        ("message_edit", False),
        ("standby", True),
    ],
)
def test_messaging_change_fields_are_items(field: str, standby: bool) -> None:
    value = build.text_message("12334", "23245", "random_mid", TS, "random_text")
    document = build.notification(
        [{"id": "0", "time": 1, "changes": [{"field": field, "value": value}]}]
    )
    (item,) = parse(document).items
    assert (item.customer_igsid, item.standby) == ("12334", standby)


def test_dashboard_sample_without_timestamp_or_mid_falls_back_to_entry_time_in_seconds() -> None:
    # A newer dashboard sample: {"sender", "recipient", "message": {"text"}} and nothing else.
    value = {
        "sender": {"id": "1234"},
        "recipient": {"id": "5678"},
        "message": {"text": "random_text"},
    }
    change = {"field": "messages", "value": value}
    document = build.notification([{"id": "0", "time": 1_527_459_824, "changes": [change]}])
    (item,) = parse(document).items
    assert item == InboundItem(
        "0", ItemKind.MESSAGE, "1234", 1_527_459_824_000, None, "random_text"
    )


def test_non_messaging_change_fields_are_skipped() -> None:
    changes = [
        {"field": "comments", "value": {"id": "1", "text": "nice"}},
        {"field": ["messages"], "value": {}},
        {"field": "messages", "value": "not an object"},
        "not an object",
    ]
    parsed = parse(build.notification([{"id": "0", "time": 1, "changes": changes}]))
    assert parsed.items == ()
    assert len(parsed.skipped) == 4
    assert "'comments' is not a messaging field" in parsed.skipped[0]


# --- timestamps and ids ------------------------------------------------------------------


def one_item(raw: dict[str, Any], *, time: Any = TS + 999) -> ParsedNotification:
    return parse(
        {"object": "instagram", "entry": [{"id": ACCOUNT, "time": time, "messaging": [raw]}]}
    )


def with_timestamp(value: Any) -> dict[str, Any]:
    raw = build.text_message(C1, ACCOUNT, "m1", TS, "hi")
    raw["timestamp"] = value
    return raw


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TS, TS),
        (str(TS), TS),
        (f" {TS} ", TS),
        (float(TS) + 0.5, TS),
        ("1.7189e12", 1_718_900_000_000),
        (0, 0),
    ],
)
def test_usable_timestamps(value: Any, expected: int) -> None:
    (item,) = one_item(with_timestamp(value)).items
    assert item.timestamp_ms == expected


@pytest.mark.parametrize(
    "value", [None, "soon", "", -1, True, [TS], {"ms": TS}, "nan", "inf", 10**18, "9" * 5000]
)
def test_unusable_timestamp_falls_back_to_entry_time(value: Any) -> None:
    (item,) = one_item(with_timestamp(value)).items
    assert item.timestamp_ms == TS + 999


def test_entry_time_in_seconds_is_scaled_to_milliseconds() -> None:
    (item,) = one_item(with_timestamp(None), time=1_718_900_000).items
    assert item.timestamp_ms == 1_718_900_000_000


def test_item_without_any_usable_time_is_skipped() -> None:
    raw = with_timestamp(None)
    del raw["timestamp"]
    parsed = one_item(raw, time="never")
    assert parsed.items == ()
    assert parsed.skipped == ("entry[0].messaging[0] has no usable timestamp",)


def test_numeric_ids_are_coerced_to_strings() -> None:
    raw = {
        "sender": {"id": 1234567890123456},
        "recipient": {"id": 17841400000000001},
        "timestamp": TS,
        "message": {"mid": 42, "text": "hi"},
    }
    document = {"object": "instagram", "entry": [{"id": 17841400000000001, "messaging": [raw]}]}
    (item,) = parse(document).items
    assert (item.account_id, item.customer_igsid, item.mid) == (ACCOUNT, C1, "42")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda raw: raw.pop("sender"),
        lambda raw: raw.pop("recipient"),
        lambda raw: raw.update(sender={"id": None}),
        lambda raw: raw.update(sender={"id": ""}),
        lambda raw: raw.update(sender={"id": True}),
        lambda raw: raw.update(recipient="17841400000000001"),
        lambda raw: raw.update(sender={"user_ref": "abc"}),
    ],
)
def test_item_without_sender_or_recipient_id_is_skipped(
    mutate: Callable[[dict[str, Any]], object],
) -> None:
    raw = build.text_message(C1, ACCOUNT, "m1", TS, "hi")
    mutate(raw)
    parsed = one_item(raw)
    assert parsed.items == ()
    assert parsed.skipped == ("entry[0].messaging[0] has no sender or recipient id",)


def test_wrong_types_inside_a_message_do_not_lose_the_message() -> None:
    raw = build.text_message(C1, ACCOUNT, "m1", TS, "hi")
    raw["message"] |= {"text": ["not", "text"], "mid": {"x": 1}, "attachments": "nope"}
    (item,) = one_item(raw).items
    assert (item.kind, item.text, item.mid) == (ItemKind.MESSAGE, None, None)


# --- tolerant skipping -------------------------------------------------------------------

GOOD = build.text_message(C1, ACCOUNT, "m-good", TS, "still counted")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"object": "page", "entry": []}, "object 'page' is not 'instagram'"),
        ({"entry": []}, "object None is not 'instagram'"),
        ({"object": "instagram"}, "entry is missing, not a list"),
        ({"object": "instagram", "entry": {"id": ACCOUNT}}, "entry is dict, not a list"),
        ({"object": "instagram", "entry": ["x"]}, "entry[0] is str, not an object"),
        ({"object": "instagram", "entry": [{"messaging": [GOOD]}]}, "entry[0] has no account id"),
        (
            {"object": "instagram", "entry": [{"id": ACCOUNT, "changed_fields": ["bio"]}]},
            "entry[0] has no messaging, standby or changes",
        ),
        (
            {"object": "instagram", "entry": [{"id": ACCOUNT, "messaging": {"0": GOOD}}]},
            "entry[0].messaging is dict, not a list",
        ),
        (
            {"object": "instagram", "entry": [{"id": ACCOUNT, "messaging": [None]}]},
            "entry[0].messaging[0] is missing, not an object",
        ),
        (
            {"object": "instagram", "entry": [{"id": ACCOUNT, "messaging": [{"message": "hi"}]}]},
            "entry[0].messaging[0] message is str, not an object",
        ),
    ],
)
def test_unusable_parts_are_skipped_with_a_reason(document: Any, reason: str) -> None:
    parsed = parse(document)
    assert parsed.items == ()
    assert parsed.skipped == (reason,)


def test_a_bad_part_does_not_lose_the_rest_of_the_batch() -> None:
    document = {
        "object": "instagram",
        "entry": [
            "garbage",
            {"id": ACCOUNT, "messaging": [42, {"postback": []}, GOOD]},
            {"id": ACCOUNT, "standby": [GOOD], "changes": 7},
        ],
    }
    parsed = parse(document)
    assert [(item.text, item.standby) for item in parsed.items] == [
        ("still counted", False),
        ("still counted", True),
    ]
    assert len(parsed.skipped) == 4


def test_skip_reasons_stay_short_for_hostile_values() -> None:
    parsed = parse({"object": "x" * 10_000, "entry": []})
    (reason,) = parsed.skipped
    assert len(reason) < 100


# --- malformed bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b"[]",
        b"[{}]",
        b"null",
        b"123",
        b'"object"',
        b"\xff\xfe{}",
        b'{"object": "\xff"}',
        b"[" * 5000 + b"]" * 5000,
    ],
)
def test_malformed_bodies_raise(body: bytes) -> None:
    with pytest.raises(MalformedNotification):
        parse_notification(body)


def test_malformed_notification_is_a_value_error_with_a_message() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        parse_notification(b"[]")


def test_empty_object_is_tolerated() -> None:
    assert parse_notification(b"{}").items == ()


# --- fuzzing -----------------------------------------------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=20,
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # Mostly the right shape, sometimes anything: deep paths are reached and still get garbage.
    return st.integers(0, 9).flatmap(lambda n: strategy if n else _JSON)


_IDS = _maybe(st.sampled_from([C1, ACCOUNT, "0", "", 12334]))
_PARTY = _maybe(st.fixed_dictionaries({"id": _IDS}))
_BODY = _maybe(
    st.fixed_dictionaries(
        {},
        optional={
            "mid": _maybe(_TEXT),
            "text": _maybe(_TEXT),
            "title": _maybe(_TEXT),
            "is_echo": _maybe(st.booleans()),
            "is_deleted": _maybe(st.booleans()),
        },
    )
)
_ITEM = _maybe(
    st.fixed_dictionaries(
        {"sender": _PARTY, "recipient": _PARTY},
        optional={
            "timestamp": _maybe(st.integers(min_value=0, max_value=2 * TS)),
            **{key: _BODY for key in ("message", "postback", "reaction", "read", "referral")},
        },
    )
)
_CHANGE = _maybe(
    st.fixed_dictionaries(
        {"field": _maybe(st.sampled_from(["messages", "standby", "comments"])), "value": _ITEM}
    )
)
_ENTRY = _maybe(
    st.fixed_dictionaries(
        {"id": _IDS},
        optional={
            "time": _maybe(st.integers(min_value=0, max_value=2 * TS)),
            "messaging": _maybe(st.lists(_ITEM, max_size=3)),
            "standby": _maybe(st.lists(_ITEM, max_size=3)),
            "changes": _maybe(st.lists(_CHANGE, max_size=3)),
        },
    )
)
_NOTIFICATION = st.fixed_dictionaries(
    {"object": _maybe(st.just("instagram")), "entry": _maybe(st.lists(_ENTRY, max_size=3))}
)


def _check(body: bytes) -> None:
    try:
        parsed = parse_notification(body)
    except MalformedNotification:
        return
    assert isinstance(parsed, ParsedNotification)
    for item in parsed.items:
        assert isinstance(item.kind, ItemKind)
        assert isinstance(item.account_id, str)
        assert item.account_id
        assert isinstance(item.customer_igsid, str)
        assert item.customer_igsid
        assert isinstance(item.timestamp_ms, int)
        assert 0 <= item.timestamp_ms < 2**63
        assert item.mid is None or isinstance(item.mid, str)
        assert item.text is None or isinstance(item.text, str)
    assert all(isinstance(reason, str) for reason in parsed.skipped)


@given(body=st.binary(max_size=300))
def test_arbitrary_bytes_only_parse_or_raise_malformed(body: bytes) -> None:
    _check(body)


@given(document=_JSON)
def test_arbitrary_json_only_parses_or_raises_malformed(document: Any) -> None:
    _check(orjson.dumps(document))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(document=_NOTIFICATION)
def test_meta_shaped_structures_with_arbitrary_leaves_never_raise(document: Any) -> None:
    parse(document)  # an object at the top: must never raise
    _check(orjson.dumps(document))


# --- builders round trip -----------------------------------------------------------------

_ARGS = (C1, ACCOUNT, "m", TS)
_MESSAGE = ItemKind.MESSAGE

# Builder output, and the kind and text it must parse back to.
BUILT: dict[str, tuple[dict[str, Any], ItemKind, str | None]] = {
    "text": (build.text_message(*_ARGS, "hi"), _MESSAGE, "hi"),
    "image": (build.attachment_message(*_ARGS, "image", "https://x/i"), _MESSAGE, None),
    "ig_reel": (build.attachment_message(*_ARGS, "ig_reel", "https://x/r"), _MESSAGE, None),
    "story_mention": (build.story_mention(*_ARGS, "https://x/s"), _MESSAGE, None),
    "story_reply": (build.story_reply(*_ARGS, "wow", "17", "https://x/s"), _MESSAGE, "wow"),
    "quick_reply": (build.quick_reply(*_ARGS, "Yes", "YES"), _MESSAGE, "Yes"),
    "unsupported": (build.unsupported_message(*_ARGS), _MESSAGE, None),
    "share": (build.share(*_ARGS, "https://x/p"), _MESSAGE, None),
    "postback": (build.postback(*_ARGS, "Hours?", "HOURS"), ItemKind.POSTBACK, "Hours?"),
    "echo": (build.echo(ACCOUNT, C1, "m", TS, "hello"), ItemKind.ECHO, "hello"),
    "unsend": (build.unsend(*_ARGS), ItemKind.UNSEND, None),
    "reaction": (build.reaction(*_ARGS), ItemKind.REACTION, None),
    "unreact": (build.reaction(*_ARGS, action="unreact"), ItemKind.REACTION, None),
    "read": (build.read(*_ARGS), ItemKind.READ, None),
    "message_edit": (build.message_edit(*_ARGS, "fixed"), ItemKind.EDIT, None),
}


def _parse_items(*raw: dict[str, Any]) -> tuple[InboundItem, ...]:
    body = build.encode(build.notification([build.entry(ACCOUNT, list(raw))]))
    parsed = parse_notification(body)
    assert parsed.skipped == ()
    return parsed.items


@pytest.mark.parametrize("name", sorted(BUILT))
def test_builders_parse_back(name: str) -> None:
    raw, kind, text = BUILT[name]
    assert _parse_items(raw) == (InboundItem(ACCOUNT, kind, C1, TS, "m", text),)


def test_referral_builder_parses_back_without_a_mid() -> None:
    raw = build.referral(C1, ACCOUNT, TS, "summer_sale")
    assert _parse_items(raw) == (
        InboundItem(ACCOUNT, ItemKind.REFERRAL, C1, TS, None, referral=True),
    )


def test_entry_builder_defaults_and_standby() -> None:
    items = [build.read(C1, ACCOUNT, "a", TS + 5), build.read(C1, ACCOUNT, "b", TS)]
    assert build.entry(ACCOUNT, items)["time"] == TS + 5
    assert build.entry(ACCOUNT, [], time_ms=7)["time"] == 7
    standby = build.entry(ACCOUNT, items, standby=True)
    assert "messaging" not in standby
    assert all(item.standby for item in parse(build.notification([standby])).items)


def test_encode_is_compact_json() -> None:
    assert build.encode(build.notification([])) == b'{"object":"instagram","entry":[]}'


def _at(n: int, *, ts: int | None = None, mid_of: int | None = None) -> tuple[str, str, str, int]:
    """Customer-to-account arguments of fixture item `n` (see tests/fixtures/meta)."""
    return C1, ACCOUNT, mid(mid_of or n), TS + (ts or n) * 1000


# The builders must reproduce Meta's documented shapes, not just something the parser accepts.
DOCUMENTED: dict[str, dict[str, Any]] = {
    "text": build.text_message(*_at(1), "Hi! Is the blue jacket still available?"),
    "image": build.attachment_message(*_at(2), "image", cdn("17900000000000002")),
    "story_mention": build.story_mention(*_at(9), cdn("17900000000000009")),
    "story_reply": build.story_reply(
        *_at(10), "Love this colour!", "17900000000000010", cdn("17900000000000010")
    ),
    "quick_reply": build.quick_reply(*_at(11), "Yes, in size M", "SIZE_M"),
    "unsupported": build.unsupported_message(*_at(12)),
    "postback": build.postback(*_at(14), "What are your opening hours?", "ICEBREAKER_HOURS"),
    "echo": build.echo(ACCOUNT, C1, mid(15), TS + 15_000, "Yes it is! Which size?"),
    "unsend": build.unsend(*_at(16, mid_of=1)),
    "reaction": build.reaction(*_at(17, mid_of=15)),
    "read": build.read(*_at(18, mid_of=15)),
    "referral": build.referral(C1, ACCOUNT, TS + 19_000, "summer_sale"),
    "message_edit": build.message_edit(
        *_at(20, mid_of=1), "Hi! Is the navy jacket still available?"
    ),
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_builders_produce_the_documented_shapes(name: str) -> None:
    (raw,) = load(name)["entry"][0]["messaging"]
    assert DOCUMENTED[name] == raw


def test_dashboard_builder_matches_the_fixture() -> None:
    assert build.dashboard_test_notification() == load("dashboard_test")


def test_fixture_timestamps_are_integer_milliseconds() -> None:
    # Guards the fixtures themselves: Meta's real items carry ms ints (the dashboard sample aside).
    for path in FIXTURES.glob("*.json"):
        if path.stem == "dashboard_test":
            continue
        for entry in json.loads(path.read_text("utf-8"))["entry"]:
            for raw in entry.get("messaging", []) + entry.get("standby", []):
                assert isinstance(raw["timestamp"], int), path.name
                assert raw["timestamp"] > 10**12, path.name
