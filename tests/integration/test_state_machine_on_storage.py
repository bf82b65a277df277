"""The property of DESIGN section 2, through the real use cases and a real database: random
interleavings of customer messages, echoes, duplicates, late deliveries and done marks open
exactly the conversations an independent model says, and never two at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convohook.domain.inbound import InboundItem, ItemKind
from convohook.domain.model import Channel
from convohook.meta.notifications import echo, encode, entry, notification, text_message
from convohook.storage.database import Database
from convohook.storage.sqlite import SQLiteStorage
from convohook.usecases.clock import Clock
from convohook.usecases.conversations import mark_done
from convohook.usecases.orgs import create_org
from convohook.usecases.processing import (
    ProcessingPolicy,
    ProcessReport,
    apply_item,
    process_pending,
)

POLICY = ProcessingPolicy()


@dataclass(frozen=True)
class Op:
    kind: str  # msg | echo | dup | late | done
    customer: int
    skew: int


ops = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(["msg", "msg", "msg", "echo", "dup", "late", "done"]),
        customer=st.integers(0, 2),
        skew=st.integers(1, 500),
    ),
    max_size=40,
)


def _at(ms: int) -> Clock:
    return lambda: ms


def fresh() -> tuple[Database, Channel]:
    storage = SQLiteStorage("sqlite:///:memory:")
    storage.migrate()
    db = Database(storage)
    org = db.run_sync(create_org, "P", 0).org
    channel = Channel("ch_p", org.id, "INSTAGRAM", "biz", "acct", "tok", 0)
    db.run_sync(lambda tx: tx.insert_channel(channel))
    return db, channel


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_openings_on_storage_equal_the_model(sequence: list[Op]) -> None:
    db, channel = fresh()
    clock = 10_000
    sent: list[tuple[str, int, int]] = []  # (mid, customer, ts)
    model_open: dict[int, bool] = {}
    model_done: dict[int, int] = {}
    model_seen: set[str] = set()
    model_openings = 0
    for n, op in enumerate(sequence):
        clock += 1_000
        if op.kind == "done":
            open_conversations = db.run_sync(
                lambda tx: tx.list_conversations(
                    channel.org_id,
                    status="open",
                    channel_id=None,
                    contact_id=None,
                    before=None,
                    limit=50,
                )
            )
            target = next(
                (c for c in open_conversations if c.contact.igsid == str(op.customer)), None
            )
            if target is not None:
                db.run_sync(mark_done, channel.org_id, target.id, clock=_at(clock))
            if model_open.get(op.customer):
                model_open[op.customer] = False
                model_done[op.customer] = clock
            continue
        if op.kind == "dup" and sent:
            mid, customer, ts = sent[op.skew % len(sent)]
            kind = ItemKind.MESSAGE if not mid.startswith("e") else ItemKind.ECHO
        else:
            customer = op.customer
            kind = ItemKind.ECHO if op.kind == "echo" else ItemKind.MESSAGE
            mid = f"{'e' if kind is ItemKind.ECHO else 'm'}{n}"
            ts = clock - op.skew * 10 if op.kind == "late" else clock
            sent.append((mid, customer, ts))
        item = InboundItem("acct", kind, str(customer), ts, mid)
        db.run_sync(apply_item, channel, item, clock, POLICY, ProcessReport())
        if mid in model_seen:
            continue
        model_seen.add(mid)
        if kind is ItemKind.ECHO or model_open.get(customer):
            continue
        if customer in model_done and ts < model_done[customer]:
            continue
        model_open[customer] = True
        model_openings += 1

    with db.storage.transaction() as tx:
        conn: Any = tx  # the SQL itself, to count what the model predicts
        openings = conn._x(
            "SELECT count(*) FROM events WHERE type = 'conversation.opened'"
        ).fetchone()[0]
        max_open = conn._x(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM conversations "
            "WHERE status = 'open' GROUP BY contact_id)"
        ).fetchone()[0]
        open_customers = {
            r[0]
            for r in conn._x(
                "SELECT c.igsid FROM conversations v JOIN contacts c ON c.id = v.contact_id "
                "WHERE v.status = 'open'"
            )
        }
    db.close()
    assert openings == model_openings
    assert max_open <= 1
    assert open_customers == {str(c) for c, is_open in model_open.items() if is_open}


batches = st.lists(
    st.builds(
        Op,
        kind=st.sampled_from(["msg", "msg", "echo", "dup", "late", "late", "done", "flush"]),
        customer=st.integers(0, 2),
        skew=st.integers(1, 500),
    ),
    max_size=30,
)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sequence=batches)
def test_batched_processing_equals_the_model(db: Database, sequence: list[Op]) -> None:
    """The same property through `process_pending`, the way the processor runs: several
    notifications (of one or more items) per batch, so that one batch holds a customer's
    first message and its next, a message and its redelivery, an echo before a message.
    On both databases: what a batch reads beforehand (`known_customers`) must decide exactly
    as item by item did."""
    org = db.run_sync(create_org, "Batched", 0).org  # one org and channel per example
    account = f"acct_{org.id}"
    channel = Channel(f"ch_{org.id}", org.id, "INSTAGRAM", "biz", account, "tok", 0)
    db.run_sync(lambda tx: tx.insert_channel(channel))
    policy = ProcessingPolicy()
    clock = 10_000
    sent: list[tuple[str, int, int]] = []
    queued: list[Any] = []
    model_open: dict[int, bool] = {}
    model_done: dict[int, int] = {}
    model_seen: set[str] = set()
    model_openings = 0

    def flush() -> None:
        bodies, items = [], list(queued)
        while items:  # one to three items per notification
            size = 1 + len(items) % 3
            bodies.append(encode(notification([entry(account, items[:size])])))
            items = items[size:]
        queued.clear()
        if bodies:
            db.run_sync(lambda tx: tx.insert_notifications(bodies, clock))
            db.run_sync(process_pending, now_ms=clock, limit=100, policy=policy)

    for n, op in enumerate(sequence):
        clock += 1_000
        if op.kind == "flush":
            flush()
            continue
        if op.kind == "done":
            flush()
            target = db.run_sync(
                lambda tx: tx.list_conversations(
                    org.id, status="open", channel_id=None, contact_id=None, before=None, limit=50
                )
            )
            match = next((c for c in target if c.contact.igsid == str(op.customer)), None)
            if match is not None:
                db.run_sync(mark_done, org.id, match.id, clock=_at(clock))
            if model_open.get(op.customer):
                model_open[op.customer] = False
                model_done[op.customer] = clock
            continue
        if op.kind == "dup" and sent:
            mid, customer, ts = sent[op.skew % len(sent)]
            is_echo = mid.startswith("e")
        else:
            customer, is_echo = op.customer, op.kind == "echo"
            mid = f"{'e' if is_echo else 'm'}{n}-{org.id}"
            ts = clock - op.skew * 10 if op.kind == "late" else clock
            sent.append((mid, customer, ts))
        queued.append(
            echo(account, str(customer), mid, ts, "hi")
            if is_echo
            else text_message(str(customer), account, mid, ts, "hi")
        )
        if mid in model_seen:
            continue
        model_seen.add(mid)
        if is_echo or model_open.get(customer):
            continue
        if customer in model_done and ts < model_done[customer]:
            continue
        model_open[customer] = True
        model_openings += 1
    flush()

    with db.storage.transaction() as tx:
        conn: Any = tx
        openings = conn._x(
            "SELECT count(*) FROM events WHERE type = 'conversation.opened' AND org_id = ?",
            (org.id,),
        ).fetchone()[0]
        open_customers = [
            r[0]
            for r in conn._x(
                "SELECT c.igsid FROM conversations v JOIN contacts c ON c.id = v.contact_id "
                "WHERE v.status = 'open' AND v.org_id = ?",
                (org.id,),
            ).fetchall()
        ]
        failed = conn._x("SELECT count(*) FROM notifications WHERE status = 'failed'").fetchone()[0]
    assert failed == 0
    assert openings == model_openings
    assert sorted(open_customers) == sorted(str(c) for c, o in model_open.items() if o)
