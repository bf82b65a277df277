"""From a Meta webhook body to the items the conversation state machine needs.

Meta retries anything it does not see acknowledged, for up to 36 hours, and adds fields and
item types without notice. So the only failure here is a body that is not a JSON object at all;
every other surprise (an unknown `object`, an entry of another product, a field of the wrong
type) drops just the part it affects, with a short reason in `ParsedNotification.skipped`, and
the rest of the batch still counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from convohook.domain.inbound import InboundItem, ItemKind, ParsedNotification

OBJECT = "instagram"

# `changes[].field` values whose `value` is a messaging item. The App Dashboard's "Test" button
# sends messaging samples in this `changes` shape instead of `messaging[]`.
_CHANGE_FIELDS = frozenset(
    {
        "messages",
        "messaging_postbacks",
        "message_reactions",
        "messaging_seen",
        "messaging_referral",
        "message_edit",
        "standby",
    }
)

# Checked in this order: a message that carries a referral (an ad or ig.me click followed by
# a message) is a message, and a postback with a referral (an ice-breaker tap) is a postback.
_PAYLOAD_KINDS: tuple[tuple[str, ItemKind], ...] = (
    ("message", ItemKind.MESSAGE),
    ("postback", ItemKind.POSTBACK),
    ("reaction", ItemKind.REACTION),
    ("read", ItemKind.READ),
    ("message_edit", ItemKind.EDIT),
    ("referral", ItemKind.REFERRAL),
)

# Meta's `entry.time` is in milliseconds, but the dashboard's test samples use seconds; a value
# this small as milliseconds would be in early 1973, so it can only be seconds.
_SECONDS_BELOW = 10**11
# Year 10000: anything later is garbage and would overflow a BIGINT once scaled or stored.
_MAX_MS = 253_402_300_800_000
_REASON_VALUE_CHARS = 40


class MalformedNotification(ValueError):
    """The body is not a UTF-8 JSON object, so nothing in it can be trusted to be Meta's."""


@dataclass(frozen=True, slots=True)
class _Entry:
    account_id: str
    fallback_ms: int | None


@dataclass(frozen=True, slots=True)
class _Payload:
    kind: ItemKind
    mid: str | None
    text: str | None
    referral: bool = False


def parse_notification(body: bytes) -> ParsedNotification:
    """Every usable item of `body`, in order, plus why anything else was passed over.

    Raises MalformedNotification only when `body` is not UTF-8 JSON with an object at the top.
    """
    document = _load(body)
    items: list[InboundItem] = []
    skipped: list[str] = []
    for result in _document_results(document):
        if isinstance(result, InboundItem):
            items.append(result)
        else:
            skipped.append(result)
    return ParsedNotification(items=tuple(items), skipped=tuple(skipped))


def _load(body: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedNotification(f"notification body is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedNotification(
            f"notification body must be a JSON object, got {type(document).__name__}"
        )
    return document


def _document_results(document: dict[str, Any]) -> Iterator[InboundItem | str]:
    kind = document.get("object")
    if kind != OBJECT:
        # Messenger (`page`) or WhatsApp notifications sent to this URL by a misconfigured app.
        yield f"object {_show(kind)} is not {OBJECT!r}"
        return
    entries = document.get("entry")
    if not isinstance(entries, list):
        yield f"entry is {_type(entries)}, not a list"
        return
    for index, raw in enumerate(entries):
        yield from _entry_results(raw, f"entry[{index}]")


def _entry_results(raw: object, where: str) -> Iterator[InboundItem | str]:
    if not isinstance(raw, dict):
        yield f"{where} is {_type(raw)}, not an object"
        return
    account_id = _as_id(raw.get("id"))
    if account_id is None:
        yield f"{where} has no account id"
        return
    entry = _Entry(account_id, _entry_time_ms(raw.get("time")))
    sources = [key for key in ("messaging", "standby", "changes") if key in raw]
    if not sources:
        # Comments, mentions and other non-messaging fields of the same Instagram app.
        yield f"{where} has no messaging, standby or changes"
    for key in sources:
        yield from _list_results(raw[key], entry, key, f"{where}.{key}")


def _list_results(raw: object, entry: _Entry, key: str, where: str) -> Iterator[InboundItem | str]:
    if not isinstance(raw, list):
        yield f"{where} is {_type(raw)}, not a list"
        return
    for index, element in enumerate(raw):
        at = f"{where}[{index}]"
        if key == "changes":
            yield _change_result(element, entry, at)
        else:
            yield _item_result(element, entry, standby=key == "standby", where=at)


def _change_result(raw: object, entry: _Entry, where: str) -> InboundItem | str:
    if not isinstance(raw, dict):
        return f"{where} is {_type(raw)}, not an object"
    field = raw.get("field")
    if not isinstance(field, str) or field not in _CHANGE_FIELDS:
        return f"{where} field {_show(field)} is not a messaging field"
    return _item_result(raw.get("value"), entry, standby=field == "standby", where=f"{where}.value")


def _item_result(raw: object, entry: _Entry, *, standby: bool, where: str) -> InboundItem | str:
    if not isinstance(raw, dict):
        return f"{where} is {_type(raw)}, not an object"
    payload = _classify(raw)
    if isinstance(payload, str):
        return f"{where} {payload}"
    sender = _party_id(raw.get("sender"))
    recipient = _party_id(raw.get("recipient"))
    if sender is None or recipient is None:
        return f"{where} has no sender or recipient id"
    timestamp_ms = _millis(raw.get("timestamp"))
    if timestamp_ms is None:
        timestamp_ms = entry.fallback_ms
    if timestamp_ms is None:
        return f"{where} has no usable timestamp"
    return InboundItem(
        account_id=entry.account_id,
        kind=payload.kind,
        # An echo is the business writing, so the customer is the one it was written to.
        customer_igsid=recipient if payload.kind is ItemKind.ECHO else sender,
        timestamp_ms=timestamp_ms,
        mid=payload.mid,
        text=payload.text,
        standby=standby,
        # An ig.me link or an ad: Meta puts `referral` in the message (ads, new threads) or
        # beside it in the item.
        referral=payload.referral or isinstance(raw.get("referral"), dict),
    )


def _classify(item: dict[str, Any]) -> _Payload | str:
    """What the item is, or why it cannot be told (its payload has the wrong type)."""
    for key, kind in _PAYLOAD_KINDS:
        if key not in item:
            continue
        body = item[key]
        if not isinstance(body, dict):
            return f"{key} is {_type(body)}, not an object"
        if key == "message":
            return _Payload(
                _message_kind(body),
                _as_id(body.get("mid")),
                _text(body, "text"),
                referral=isinstance(body.get("referral"), dict),
            )
        title = _text(body, "title") if key == "postback" else None
        return _Payload(kind, _as_id(body.get("mid")), title)
    return _Payload(ItemKind.OTHER, None, None)


def _message_kind(message: dict[str, Any]) -> ItemKind:
    # Echo first: an unsend of the business's own message is still the business acting.
    if _flag(message.get("is_echo")):
        return ItemKind.ECHO
    if _flag(message.get("is_deleted")):
        return ItemKind.UNSEND
    return ItemKind.MESSAGE


def _flag(value: object) -> bool:
    # Meta sends JSON booleans; a stringly "true" from a relay still means the same thing, and
    # misreading an echo as a customer message would open a conversation with the business.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) else None


def _party_id(party: object) -> str | None:
    return _as_id(party.get("id")) if isinstance(party, dict) else None


def _as_id(value: object) -> str | None:
    """Meta's ids are strings, but some relays send them as JSON numbers; both mean the same."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _millis(value: object) -> int | None:
    """A millisecond timestamp from an int, a float or a numeric string; None if unusable."""
    number: float | int
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        number = _number(value)
    else:
        return None
    # Also rejects NaN and infinities, whose comparisons are all false.
    if not 0 <= number < _MAX_MS:
        return None
    return int(number)


def _number(text: str) -> float | int:
    # int first so long digit strings stay exact; float for "1.5e12"-style relays. NaN stands in
    # for "not a number" and fails the caller's range check.
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return math.nan


def _entry_time_ms(value: object) -> int | None:
    millis = _millis(value)
    if millis is None:
        return None
    return millis * 1000 if millis < _SECONDS_BELOW else millis


def _type(value: object) -> str:
    return "missing" if value is None else type(value).__name__


def _show(value: object) -> str:
    # Reasons end up in logs and the notifications table: keep hostile input short.
    shown = repr(value)
    if len(shown) > _REASON_VALUE_CHARS:
        return shown[: _REASON_VALUE_CHARS - 3] + "..."
    return shown
