"""Builders of Meta-shaped Instagram notifications, for tests, `convohook simulate` and benchmarks.

They follow the payloads in Meta's "Webhooks for Instagram Messaging" and "Instagram Platform
Webhook Notification Examples" pages, so anything that parses these also parses what Meta sends.
Item builders take `(sender, recipient, mid, timestamp_ms, ...)` in Meta's own order; wrap
items with `entry()` and `notification()`, then `encode()` to get the bytes to sign and POST.
"""

from __future__ import annotations

from typing import Any

import orjson

from convohook.meta.parse import OBJECT

Json = dict[str, Any]

# Not Meta's: convohook's simulators send it with a notification to learn, in the answer, which
# of its accounts no channel has (their items are acknowledged and skipped). Meta never sends
# it, and its requests get the plain answer they always had.
CHECK_ACCOUNTS_HEADER = "x-convohook-check-accounts"

# What the App Dashboard's "Test" button sends for the `messages` field: fixed fake ids, an
# entry id of "0", and times in seconds, in the `changes[]` shape rather than `messaging[]`.
DASHBOARD_TEST_SENDER = "12334"
DASHBOARD_TEST_RECIPIENT = "23245"
_DASHBOARD_TEST_TIME_S = 1527459824


def notification(entries: list[Json]) -> Json:
    """The top-level body: one notification may batch entries of several accounts."""
    return {"object": OBJECT, "entry": entries}


def entry(
    account_id: str, items: list[Json], *, standby: bool = False, time_ms: int | None = None
) -> Json:
    """One account's entry; `standby` puts the items where Meta puts them for a secondary app.

    Meta stamps `time` when it sends, so by default it is the latest item's timestamp, which
    keeps built notifications deterministic.
    """
    if time_ms is None:
        stamps = [item["timestamp"] for item in items if isinstance(item.get("timestamp"), int)]
        time_ms = max(stamps, default=0)
    return {"id": account_id, "time": time_ms, "standby" if standby else "messaging": items}


def encode(body: Json) -> bytes:
    """Compact JSON bytes, as Meta sends them; sign these exact bytes."""
    return orjson.dumps(body)


def _item(sender: str, recipient: str, timestamp_ms: int, **payload: Json) -> Json:
    return {
        "sender": {"id": sender},
        "recipient": {"id": recipient},
        "timestamp": timestamp_ms,
    } | payload


def _message(sender: str, recipient: str, mid: str, timestamp_ms: int, **fields: Any) -> Json:
    return _item(sender, recipient, timestamp_ms, message={"mid": mid, **fields})


def text_message(sender: str, recipient: str, mid: str, timestamp_ms: int, text: str) -> Json:
    return _message(sender, recipient, mid, timestamp_ms, text=text)


def ad_message(
    sender: str, recipient: str, mid: str, timestamp_ms: int, text: str, ad_id: str
) -> Json:
    """A message sent from an ad ("Send message" on a click-to-Instagram-Direct ad): Meta puts
    the referral in the message."""
    referral = {"ref": "", "ad_id": ad_id, "source": "ADS", "type": "OPEN_THREAD"}
    return _message(sender, recipient, mid, timestamp_ms, text=text, referral=referral)


def attachment_message(
    sender: str, recipient: str, mid: str, timestamp_ms: int, attachment_type: str, url: str
) -> Json:
    """Image, video, audio, file, share, story_mention, ig_reel...: all carry a payload URL."""
    attachment = {"type": attachment_type, "payload": {"url": url}}
    return _message(sender, recipient, mid, timestamp_ms, attachments=[attachment])


def story_mention(sender: str, recipient: str, mid: str, timestamp_ms: int, url: str) -> Json:
    return attachment_message(sender, recipient, mid, timestamp_ms, "story_mention", url)


def share(sender: str, recipient: str, mid: str, timestamp_ms: int, url: str) -> Json:
    return attachment_message(sender, recipient, mid, timestamp_ms, "share", url)


def story_reply(
    sender: str, recipient: str, mid: str, timestamp_ms: int, text: str, story_id: str, url: str
) -> Json:
    reply_to = {"story": {"url": url, "id": story_id}}
    return _message(sender, recipient, mid, timestamp_ms, text=text, reply_to=reply_to)


def quick_reply(
    sender: str, recipient: str, mid: str, timestamp_ms: int, text: str, payload: str
) -> Json:
    return _message(
        sender, recipient, mid, timestamp_ms, text=text, quick_reply={"payload": payload}
    )


def unsupported_message(sender: str, recipient: str, mid: str, timestamp_ms: int) -> Json:
    """A gif or sticker: Meta only says that something arrived."""
    return _message(sender, recipient, mid, timestamp_ms, is_unsupported=True)


def postback(
    sender: str, recipient: str, mid: str, timestamp_ms: int, title: str, payload: str
) -> Json:
    """An ice-breaker or button tap; `title` is the text the customer saw and tapped."""
    body = {"mid": mid, "title": title, "payload": payload}
    return _item(sender, recipient, timestamp_ms, postback=body)


def echo(business_id: str, customer_id: str, mid: str, timestamp_ms: int, text: str) -> Json:
    """The business's own message, reflected back: the business is the sender."""
    return _message(business_id, customer_id, mid, timestamp_ms, text=text, is_echo=True)


def unsend(sender: str, recipient: str, mid: str, timestamp_ms: int) -> Json:
    """The customer deleting a message; `mid` is the deleted message's id."""
    return _message(sender, recipient, mid, timestamp_ms, is_deleted=True)


def reaction(
    sender: str,
    recipient: str,
    mid: str,
    timestamp_ms: int,
    emoji: str = "\u2764\ufe0f",
    *,
    action: str = "react",
    name: str = "love",
) -> Json:
    """A reaction to message `mid`; an `unreact` carries no emoji, as Meta sends it."""
    body: Json = {"mid": mid, "action": action}
    if action == "react":
        body |= {"reaction": name, "emoji": emoji}
    return _item(sender, recipient, timestamp_ms, reaction=body)


def read(sender: str, recipient: str, mid: str, timestamp_ms: int) -> Json:
    """A seen receipt; Instagram names the last message read (Messenger uses a watermark)."""
    return _item(sender, recipient, timestamp_ms, read={"mid": mid})


def referral(
    sender: str, recipient: str, timestamp_ms: int, ref: str, *, source: str = "SHORTLINKS"
) -> Json:
    """An ig.me link with `?ref=` opened in an existing thread, without a message."""
    body = {"ref": ref, "source": source, "type": "OPEN_THREAD"}
    return _item(sender, recipient, timestamp_ms, referral=body)


def message_edit(
    sender: str, recipient: str, mid: str, timestamp_ms: int, text: str, num_edit: int = 1
) -> Json:
    body = {"mid": mid, "text": text, "num_edit": num_edit}
    return _item(sender, recipient, timestamp_ms, message_edit=body)


def dashboard_test_notification() -> Json:
    """What the App Dashboard's "Test" button sends for the Instagram `messages` field."""
    value = {
        "sender": {"id": DASHBOARD_TEST_SENDER},
        "recipient": {"id": DASHBOARD_TEST_RECIPIENT},
        "timestamp": str(_DASHBOARD_TEST_TIME_S),
        "message": {"mid": "random_mid", "text": "random_text"},
    }
    change = {"field": "messages", "value": value}
    return notification([{"id": "0", "time": _DASHBOARD_TEST_TIME_S, "changes": [change]}])
