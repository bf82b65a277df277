"""The conversation state machine (DESIGN section 2), as a pure function.

Storage loads a `CustomerState` inside a transaction, asks `decide`, and writes what it says; the
database's unique index on open conversations is the second line of defence for concurrency.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from convohook.domain.inbound import InboundItem


class Decision(enum.StrEnum):
    OPEN_FIRST = "first_message"  # never messaged before: Conversation Opened
    REOPEN = "reopened"  # messaged after the last conversation was marked done: Conversation Opened
    CONTINUE = "continue"  # belongs to the open conversation: nothing fires
    LATE = "late"  # sent before the last done mark, delivered after it: belongs to the closed one
    IGNORE = "ignore"  # not a customer message (echo, unsend, reaction, read, ...)

    @property
    def opens(self) -> bool:
        return self in (Decision.OPEN_FIRST, Decision.REOPEN)


@dataclass(frozen=True, slots=True)
class CustomerState:
    """What is known about one (channel, customer) before an item is applied."""

    has_open_conversation: bool
    last_done_at_ms: int | None  # when the most recent conversation was marked done, if any


NEW_CUSTOMER = CustomerState(has_open_conversation=False, last_done_at_ms=None)


def decide(state: CustomerState, item: InboundItem) -> Decision:
    """Decide what one (non-duplicate) item does to the customer's conversation."""
    if not item.is_customer_message:
        return Decision.IGNORE
    if state.has_open_conversation:
        return Decision.CONTINUE
    if state.last_done_at_ms is None:
        return Decision.OPEN_FIRST
    # Meta redelivers for up to 36 hours: a message written before the done mark is history of
    # the closed conversation, not a new one. Equal timestamps count as "after" (the customer
    # cannot have seen the mark and written in the same millisecond before it).
    if item.timestamp_ms < state.last_done_at_ms:
        return Decision.LATE
    return Decision.REOPEN
