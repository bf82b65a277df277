"""The state machine (DESIGN section 2), alone and as a property over random interleavings."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from convohook.domain.conversation import NEW_CUSTOMER, CustomerState, Decision, decide
from convohook.domain.inbound import InboundItem, ItemKind


def item(kind: ItemKind = ItemKind.MESSAGE, ts: int = 1_000, mid: str = "m1") -> InboundItem:
    return InboundItem(account_id="acc", kind=kind, customer_igsid="c1", timestamp_ms=ts, mid=mid)


def test_first_message_opens() -> None:
    assert decide(NEW_CUSTOMER, item()) is Decision.OPEN_FIRST


def test_postback_counts_as_customer_message() -> None:
    assert decide(NEW_CUSTOMER, item(ItemKind.POSTBACK)) is Decision.OPEN_FIRST


def test_messages_while_open_fire_nothing() -> None:
    state = CustomerState(has_open_conversation=True, last_done_at_ms=None)
    assert decide(state, item()) is Decision.CONTINUE
    assert not decide(state, item()).opens


def test_message_after_done_reopens() -> None:
    state = CustomerState(has_open_conversation=False, last_done_at_ms=5_000)
    assert decide(state, item(ts=5_001)) is Decision.REOPEN
    assert decide(state, item(ts=5_000)) is Decision.REOPEN


def test_message_sent_before_done_but_delivered_after_does_not_reopen() -> None:
    state = CustomerState(has_open_conversation=False, last_done_at_ms=5_000)
    assert decide(state, item(ts=4_999)) is Decision.LATE


def test_non_customer_items_never_open() -> None:
    for kind in (
        ItemKind.ECHO,
        ItemKind.UNSEND,
        ItemKind.REACTION,
        ItemKind.READ,
        ItemKind.REFERRAL,
        ItemKind.EDIT,
        ItemKind.OTHER,
    ):
        assert decide(NEW_CUSTOMER, item(kind)) is Decision.IGNORE


# --- property: random interleavings against an independent model ---------------------------


@dataclass
class Op:
    kind: str  # "msg" | "echo" | "dup" | "late" | "done"
    ts: int


ops = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(["msg", "msg", "echo", "dup", "late", "done"]),
        ts=st.integers(min_value=0, max_value=50),
    ),
    max_size=60,
)


class Implementation:
    """The production path in miniature: dedupe by mid, then `decide` on the stored state."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.open = False
        self.last_done: int | None = None
        self.openings = 0

    def message(self, mid: str, kind: ItemKind, ts: int) -> None:
        if mid in self.seen:
            return
        self.seen.add(mid)
        decision = decide(
            CustomerState(self.open, None if self.open else self.last_done), item(kind, ts, mid)
        )
        if decision.opens:
            assert not self.open, "two open conversations at once"
            self.open = True
            self.openings += 1

    def done(self, at: int) -> None:
        if self.open:
            self.open = False
            self.last_done = at


@settings(max_examples=300, deadline=None)
@given(ops)
def test_openings_equal_the_model(sequence: list[Op]) -> None:
    impl = Implementation()
    # The model, written independently: a conversation is open from a fresh customer message
    # until a done mark; a message opens iff none is open and it was written after the last mark.
    model_open, model_last_done, model_openings, model_seen = False, None, 0, set()
    clock = 100
    mids: list[str] = []
    for n, op in enumerate(sequence):
        clock += 10
        if op.kind == "done":
            impl.done(clock)
            if model_open:
                model_open, model_last_done = False, clock
            continue
        if op.kind == "dup" and mids:
            mid, ts, kind = mids[op.ts % len(mids)], clock, ItemKind.MESSAGE
        else:
            mid = f"m{n}"
            mids.append(mid)
            kind = ItemKind.ECHO if op.kind == "echo" else ItemKind.MESSAGE
            ts = clock - 100 + op.ts if op.kind == "late" else clock
        impl.message(mid, kind, ts)
        if mid in model_seen:
            continue
        model_seen.add(mid)
        if kind is ItemKind.ECHO or model_open:
            continue
        if model_last_done is not None and ts < model_last_done:
            continue
        model_open = True
        model_openings += 1
    assert impl.openings == model_openings
    assert impl.open == model_open
