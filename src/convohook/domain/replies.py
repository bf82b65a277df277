"""Replies to customers (DESIGN section 7), as pure rules: how long a reply may be, and when
Meta lets the business write: within 24 hours of the customer's last message, then until 7 days
only as a person's reply (tagged HUMAN_AGENT), then not at all."""

from __future__ import annotations

import enum
from dataclasses import dataclass

MAX_TEXT_BYTES = 1000
STANDARD_WINDOW_MS = 24 * 3_600_000
HUMAN_AGENT_WINDOW_MS = 7 * 24 * 3_600_000

# Who sent an outbound message, besides a user's id.
SENT_BY_API = "api"
SENT_BY_BOT = "bot"
SENT_BY_INSTAGRAM_APP = "instagram_app"

# A person may send these again: they failed, or may not have reached Meta.
RETRYABLE_STATUSES = frozenset({"failed", "unknown"})


class WindowState(enum.StrEnum):
    OPEN = "open"  # anyone may reply
    HUMAN_AGENT = "human_agent"  # only a person, tagged HUMAN_AGENT
    CLOSED = "closed"  # nothing may be sent


@dataclass(frozen=True, slots=True)
class ReplyWindow:
    state: WindowState
    until_ms: int | None  # when this state ends; None once closed
    last_customer_message_ms: int | None  # Meta's time of it; None if the customer never wrote

    @property
    def reason(self) -> str:
        """Why a reply is or is not allowed, in words for people (the UI and the API's 422s)."""
        if self.last_customer_message_ms is None:
            return (
                "the customer has never written on this channel, and Instagram lets a "
                "business reply only to a customer's message"
            )
        if self.state is WindowState.OPEN:
            return "within 24 hours of the customer's last message"
        if self.state is WindowState.HUMAN_AGENT:
            return (
                "more than 24 hours since the customer's last message: Instagram allows only a "
                "person's reply, sent as human agent, until 7 days after it"
            )
        return (
            "more than 7 days since the customer's last message: Instagram allows no reply "
            "until the customer writes again"
        )


def reply_window(last_customer_message_ms: int | None, now_ms: int) -> ReplyWindow:
    """The window at `now_ms`. Exactly 24 hours after the message the standard window has
    closed (Meta says "within 24 hours"); exactly 7 days after it, the human agent one too."""
    last = last_customer_message_ms
    if last is None:
        return ReplyWindow(WindowState.CLOSED, None, None)
    if now_ms < last + STANDARD_WINDOW_MS:
        return ReplyWindow(WindowState.OPEN, last + STANDARD_WINDOW_MS, last)
    if now_ms < last + HUMAN_AGENT_WINDOW_MS:
        return ReplyWindow(WindowState.HUMAN_AGENT, last + HUMAN_AGENT_WINDOW_MS, last)
    return ReplyWindow(WindowState.CLOSED, None, last)


class ReplyRefused(ValueError):
    """A reply that must not be sent; `field` names what to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_text(text: str) -> None:
    if not text.strip():
        raise ReplyRefused("text", "the reply is empty")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise ReplyRefused(
            "text",
            f"the reply is {size} bytes of UTF-8; Instagram takes at most {MAX_TEXT_BYTES}",
        )


def check_reply(text: str, *, human_agent: bool, window: ReplyWindow, by_bot: bool = False) -> None:
    """Raise ReplyRefused unless this reply may be sent now. Bots never reply as a human
    agent: that tag is Meta's promise that a person wrote it."""
    check_text(text)
    if human_agent and by_bot:
        raise ReplyRefused("human_agent", "a bot cannot reply as a human agent")
    if window.state is WindowState.CLOSED:
        raise ReplyRefused("text", f"the reply window is closed: {window.reason}")
    if window.state is WindowState.HUMAN_AGENT and not human_agent:
        raise ReplyRefused("human_agent", f"{window.reason}; set human_agent to true")


def send_body(recipient_igsid: str, text: str, *, human_agent: bool) -> dict[str, object]:
    """The Send API's body: a human agent's reply carries Meta's HUMAN_AGENT message tag."""
    body: dict[str, object] = {"recipient": {"id": recipient_igsid}, "message": {"text": text}}
    if human_agent:
        body["messaging_type"] = "MESSAGE_TAG"
        body["tag"] = "HUMAN_AGENT"
    return body
