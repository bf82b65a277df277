"""What the processor needs to know about one item of a Meta notification."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ItemKind(enum.StrEnum):
    """How an item of a notification is classified (DESIGN section 2)."""

    MESSAGE = "message"  # a customer message: text, attachments, story reply, quick reply, ...
    POSTBACK = "postback"  # ice-breaker or button tap: counts as a customer message
    ECHO = "echo"  # the business writing: never opens
    UNSEND = "unsend"  # message.is_deleted
    EDIT = "edit"  # message_edit
    REACTION = "reaction"
    READ = "read"
    REFERRAL = "referral"  # a referral without a message
    OTHER = "other"  # anything else Meta may add later: ignored, never an error


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One `messaging[]`/`standby[]` item, reduced to what the state machine uses.

    `account_id` is the business's Instagram professional account id (`entry[].id`); the customer
    is the sender of a customer message and the recipient of an echo.
    """

    account_id: str
    kind: ItemKind
    customer_igsid: str
    timestamp_ms: int
    mid: str | None
    text: str | None = None
    standby: bool = False
    # The message came from an ad or an ig.me link (Meta's `referral`, on the message or the
    # item): what a bot's `referral` condition reads.
    referral: bool = False

    @property
    def is_customer_message(self) -> bool:
        return self.kind in (ItemKind.MESSAGE, ItemKind.POSTBACK)


@dataclass(frozen=True, slots=True)
class ParsedNotification:
    """The useful part of one notification; `skipped` says what was passed over and why."""

    items: tuple[InboundItem, ...]
    skipped: tuple[str, ...] = ()
