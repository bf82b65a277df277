"""Inactivity (DESIGN section 7) on both backends: the deadline each open conversation keeps,
the closer's batches, the message that must win a race with it, and many closers at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import orjson
import pytest
from test_storage_contract import POLICY, T0, apply, count, msg, setup_org

from convohook.domain.inactivity import AUTO_DONE_MAX_S, AUTO_DONE_MIN_S
from convohook.domain.model import Channel, Conversation
from convohook.storage.base import Storage, Transaction
from convohook.storage.database import Database, open_storage
from convohook.storage.postgres import PostgresStorage
from convohook.storage.sqlite import SQLiteStorage
from convohook.usecases.channels import ChannelChanges, update_channel
from convohook.usecases.conversations import mark_done
from convohook.usecases.errors import Invalid, NotFound
from convohook.usecases.inactivity import Sweep, close_idle_conversations, reschedule_deadlines
from convohook.usecases.processing import ProcessReport, apply_item

HOUR_S = 3600
HOUR_MS = HOUR_S * 1000
CLOSED = ("conversation.opened", "conversation.closed")


def set_rule(db: Database, channel: Channel, seconds: int | None) -> Channel:
    changes = ChannelChanges(auto_done_after=seconds, change_auto_done_after=True)
    return db.run_sync(update_channel, channel.org_id, channel.id, changes)


def reschedule(db: Database, limit: int = 1000) -> int:
    """What the closer does first each round; returns the number of batches."""
    batches = 0
    while db.run_sync(reschedule_deadlines, limit=limit):
        batches += 1
    return batches


def conversations(db: Database, channel: Channel, status: str | None = None) -> list[Conversation]:
    return db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status=status, channel_id=None, contact_id=None, before=None, limit=50
        )
    )


def sweep(db: Database, now: int, limit: int = 100) -> Sweep:
    return db.run_sync(close_idle_conversations, clock=lambda: now, limit=limit)


def closed_events(db: Database) -> list[tuple[str, str | None]]:
    with db.storage.transaction(write=False) as tx:
        rows = tx._x(  # type: ignore[attr-defined]
            "SELECT conversation_id, reason FROM events WHERE type = 'conversation.closed' "
            "ORDER BY conversation_id"
        ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def test_the_deadline_is_set_at_opening_and_moves_with_every_message(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(igsid="111", mid="a1", ts=T0))
    [before] = conversations(db, channel)
    assert before.idle_deadline_ms is None  # no rule: no deadline, nothing to scan
    channel = set_rule(db, channel, HOUR_S)
    assert channel.auto_done_after == HOUR_S
    assert reschedule(db) == 1
    apply(db, channel, msg(igsid="222", mid="b1", ts=T0 + 10))
    by_customer = {c.contact.igsid: c for c in conversations(db, channel)}
    # A change of the setting reaches the conversations already open.
    assert by_customer["111"].idle_deadline_ms == T0 + HOUR_MS
    assert by_customer["222"].idle_deadline_ms == T0 + 10 + HOUR_MS
    apply(db, channel, msg(igsid="111", mid="a2", ts=T0 + 60_000), now=T0 + 61_000)
    apply(db, channel, msg(igsid="111", mid="a0", ts=T0 - 5_000), now=T0 + 62_000)  # late
    by_customer = {c.contact.igsid: c for c in conversations(db, channel)}
    assert by_customer["111"].idle_deadline_ms == T0 + 60_000 + HOUR_MS
    set_rule(db, channel, 2 * HOUR_S)
    reschedule(db)
    assert {c.idle_deadline_ms for c in conversations(db, channel)} == {
        T0 + 60_000 + 2 * HOUR_MS,
        T0 + 10 + 2 * HOUR_MS,
    }
    set_rule(db, channel, None)
    reschedule(db)
    assert {c.idle_deadline_ms for c in conversations(db, channel)} == {None}
    assert sweep(db, T0 + 100 * HOUR_MS).claimed == 0


def test_a_changed_setting_counts_before_the_deadlines_are_recomputed(db: Database) -> None:
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(mid="a1", ts=T0))
    # Longer: the stored deadline is now too early, and the close checks the current setting.
    set_rule(db, channel, 2 * HOUR_S)
    stale = sweep(db, T0 + HOUR_MS + 1_000)
    assert (stale.claimed, stale.closed) == (1, 0)
    [conversation] = conversations(db, channel)
    assert (conversation.status, conversation.idle_deadline_ms) == ("open", T0 + 2 * HOUR_MS)
    assert sweep(db, T0 + HOUR_MS + 2_000).claimed == 0  # refreshed: not claimed again
    # Off: nothing closes, before or after the recomputation.
    set_rule(db, channel, None)
    assert sweep(db, T0 + 3 * HOUR_MS).closed == 0
    reschedule(db)
    assert conversations(db, channel)[0].idle_deadline_ms is None
    # Shorter: due once the deadlines are recomputed (within a closer's round).
    set_rule(db, channel, 60)
    assert sweep(db, T0 + 61_000).claimed == 0
    reschedule(db)
    assert sweep(db, T0 + 61_000).closed == 1
    [closed] = conversations(db, channel)
    assert (closed.closed_reason, closed.done_at_ms) == ("inactivity", T0 + 60_000)
    assert closed_events(db) == [(closed.id, "inactivity")]


def test_deadlines_are_recomputed_in_bounded_batches(db: Database) -> None:
    channel, _ = setup_org(db)
    for i in range(7):
        apply(db, channel, msg(igsid=f"c{i}", mid=f"m{i}", ts=T0 + i))
    set_rule(db, channel, HOUR_S)
    assert reschedule(db, limit=3) == 3  # 3 + 3 + 1
    assert sorted(c.idle_deadline_ms or 0 for c in conversations(db, channel)) == [
        T0 + i + HOUR_MS for i in range(7)
    ]
    assert reschedule(db) == 0  # nothing left to do


def test_a_touch_from_any_caller_moves_the_deadline(db: Database) -> None:
    """Replies touch the conversation too (wt-replies): the deadline follows whoever calls."""
    channel, _ = setup_org(db)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(mid="a1", ts=T0))
    [conversation] = conversations(db, channel)
    db.run_sync(lambda tx: tx.touch_conversation(conversation.id, T0 + 30_000))
    [touched] = conversations(db, channel)
    assert touched.idle_deadline_ms == T0 + 30_000 + HOUR_MS
    assert sweep(db, T0 + HOUR_MS + 29_999).claimed == 0
    assert sweep(db, T0 + HOUR_MS + 30_000).closed == 1


def test_the_setting_is_checked_and_belongs_to_the_org(db: Database) -> None:
    channel, _ = setup_org(db)
    for bad in (0, AUTO_DONE_MIN_S - 1, AUTO_DONE_MAX_S + 1, -HOUR_S):
        with pytest.raises(Invalid) as refused:
            set_rule(db, channel, bad)
        assert refused.value.field == "auto_done_after"
    with pytest.raises(Invalid) as refused:
        db.run_sync(update_channel, channel.org_id, channel.id, ChannelChanges(handle=""))
    assert refused.value.field == "handle"
    with pytest.raises(NotFound):
        db.run_sync(
            update_channel,
            "org_someone_else",
            channel.id,
            ChannelChanges(auto_done_after=HOUR_S, change_auto_done_after=True),
        )
    changed = db.run_sync(
        update_channel,
        channel.org_id,
        channel.id,
        ChannelChanges(handle="@new_handle", access_token="tok2"),
    )
    assert (changed.handle, changed.access_token, changed.auto_done_after) == (
        "new_handle",
        "tok2",
        None,
    )
    assert db.run_sync(lambda tx: tx.get_channel(channel.org_id, channel.id)) == changed


def test_the_closer_closes_what_is_due_once_with_the_reason(db: Database) -> None:
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(igsid="111", mid="a1", ts=T0))
    apply(db, channel, msg(igsid="222", mid="b1", ts=T0 + 30_000))
    assert sweep(db, T0 + HOUR_MS - 1).claimed == 0
    first = sweep(db, T0 + HOUR_MS + 5_000)
    assert (first.claimed, first.closed) == (1, 1)
    by_customer = {c.contact.igsid: c for c in conversations(db, channel)}
    closed = by_customer["111"]
    assert (closed.status, closed.closed_reason) == ("done", "inactivity")
    # Done at the deadline, not when the closer came round (see domain/inactivity.py).
    assert (closed.done_at_ms, closed.idle_deadline_ms) == (T0 + HOUR_MS, None)
    assert by_customer["222"].status == "open"
    assert closed_events(db) == [(closed.id, "inactivity")]
    assert count(db, "SELECT count(*) FROM deliveries") == 3  # two openings, one close
    assert sweep(db, T0 + HOUR_MS + 5_000).claimed == 0  # closed once


def test_batches_are_bounded_and_earliest_first(db: Database) -> None:
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    for i in range(5):
        apply(db, channel, msg(igsid=f"c{i}", mid=f"m{i}", ts=T0 + (4 - i) * 1_000))
    first = sweep(db, T0 + 2 * HOUR_MS, limit=2)
    assert (first.claimed, first.closed, first.full) == (2, 2, True)
    done = {c.contact.igsid for c in conversations(db, channel, status="done")}
    assert done == {"c4", "c3"}  # the oldest deadlines
    rest = sweep(db, T0 + 2 * HOUR_MS, limit=10)
    assert (rest.closed, rest.full) == (3, False)


def test_manual_close_says_manual_in_the_event(db: Database) -> None:
    channel, _ = setup_org(db, events=CLOSED)
    apply(db, channel, msg(mid="a1"))
    [conversation] = conversations(db, channel)
    db.run_sync(mark_done, channel.org_id, conversation.id, clock=lambda: T0 + 1)
    assert closed_events(db) == [(conversation.id, "manual")]


def test_after_an_inactivity_close_the_customer_opens_anew(db: Database) -> None:
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(mid="a1", ts=T0))
    sweep(db, T0 + HOUR_MS + 8_000)
    # Written before the deadline, delivered after the close: history, as for a manual close.
    assert apply(db, channel, msg(mid="a0", ts=T0 + 10_000), T0 + HOUR_MS + 8_500) == "late"
    # Written after the deadline but before the closer came round: a new conversation, not
    # history of the closed one (its done time is the deadline).
    written = T0 + HOUR_MS + 2_000
    assert apply(db, channel, msg(mid="a2", ts=written), T0 + HOUR_MS + 9_000) == "reopened"
    reopened = conversations(db, channel, status="open")[0]
    assert (reopened.reason, reopened.idle_deadline_ms) == ("reopened", T0 + 2 * HOUR_MS + 2_000)
    assert count(db, "SELECT count(*) FROM events WHERE type = 'conversation.opened'") == 2
    assert count(db, "SELECT count(DISTINCT contact_id) FROM conversations") == 1
    second = sweep(db, T0 + 3 * HOUR_MS)
    assert second.closed == 1
    assert [reason for _, reason in closed_events(db)] == ["inactivity", "inactivity"]


class _MessageAfterClaim:
    """A transaction that, right after the closer's claim, lets `between` run: what a message
    arriving between the claim and the close would do."""

    def __init__(self, tx: Transaction, between: Callable[[Transaction], None]) -> None:
        self._tx = tx
        self._between = between

    def claim_idle_conversations(self, now_ms: int, limit: int) -> list[str]:
        claimed = self._tx.claim_idle_conversations(now_ms, limit)
        self._between(self._tx)
        return claimed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


def test_a_message_seen_between_claim_and_close_keeps_the_conversation_open(
    db: Database,
) -> None:
    """The close re-checks the deadline in the statement that closes: a message attached after
    the claim (here in the same transaction, the only place one can be: see the next test)
    wins."""
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(mid="a1", ts=T0))
    now = T0 + HOUR_MS + 1_000

    def message(tx: Transaction) -> None:
        apply_item(tx, channel, msg(mid="a2", ts=now - 500), now, POLICY, ProcessReport())

    result = db.run_sync(
        lambda tx: close_idle_conversations(
            cast(Transaction, _MessageAfterClaim(tx, message)), clock=lambda: now, limit=10
        )
    )
    assert (result.claimed, result.closed) == (1, 0)
    [conversation] = conversations(db, channel)
    assert (conversation.status, conversation.idle_deadline_ms) == ("open", now - 500 + HOUR_MS)
    assert closed_events(db) == []


def _other_writer(storage: Storage, database_url: str) -> Storage:
    """A second connection to the same database that gives up on a lock at once instead of
    waiting: whether a write can get in, without a timed assertion."""
    if isinstance(storage, SQLiteStorage):
        return SQLiteStorage(database_url, busy_timeout_s=0.05)
    assert isinstance(storage, PostgresStorage)
    return open_storage(database_url)


def test_no_message_can_commit_between_claim_and_close(database_url_for: str) -> None:
    """Structurally: the claim holds the conversation (PostgreSQL: its row lock; SQLite: the
    write lock), so a processor attaching a message waits for the close, then finds the
    conversation done and opens a new one. Here the other writer gives up instead of waiting,
    which shows it could not get in; tried again after the close, its message reopens."""
    storage = open_storage(database_url_for)
    storage.migrate()
    db = Database(storage)
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    apply(db, channel, msg(mid="a1", ts=T0))
    now = T0 + HOUR_MS + 1_000
    other = _other_writer(storage, database_url_for)

    def attach(tx: Transaction) -> str:
        if other.dialect == "postgresql":
            tx._x("SET LOCAL lock_timeout = '50ms'")  # type: ignore[attr-defined]
        item = msg(mid="a2", ts=now - 500)
        return apply_item(tx, channel, item, now, POLICY, ProcessReport()).value

    blocked: list[BaseException] = []

    def try_to_attach(_: Transaction) -> None:
        try:
            with other.transaction() as tx:
                attach(tx)
        except Exception as exc:
            blocked.append(exc)

    try:
        result = db.run_sync(
            lambda tx: close_idle_conversations(
                cast(Transaction, _MessageAfterClaim(tx, try_to_attach)),
                clock=lambda: now,
                limit=10,
            )
        )
        assert len(blocked) == 1, "the message got in between the claim and the close"
        # Refused for the lock and nothing else (SQLite: busy; PostgreSQL: lock_timeout).
        assert "lock" in str(blocked[0]).lower(), blocked[0]
        assert (result.claimed, result.closed) == (1, 1)
        # The same message, now that the close has committed: written after the deadline, so
        # a new conversation (what the waiting processor does once the lock is free).
        with other.transaction() as tx:
            assert attach(tx) == "reopened"
        assert [reason for _, reason in closed_events(db)] == ["inactivity"]
    finally:
        other.close()
        storage.close()


def _fill_overdue(db: Database, channel: Channel, n: int) -> None:
    def run(tx: Transaction) -> None:
        for i in range(n):
            contact = tx.get_or_create_contact(channel.org_id, channel.id, f"c{i}", T0)
            tx.insert_conversation(
                f"conv_{i:05d}", channel.org_id, channel.id, contact.id, "first_message", T0
            )

    db.run_sync(run)


def test_many_closers_close_each_conversation_once(database_url_for: str) -> None:
    """Four closers, each with its own connection (as four `convohook worker` processes), over
    2,000 overdue conversations: each closed once, with exactly one conversation.closed."""
    n, closers = 2_000, 4
    setup = open_storage(database_url_for)
    setup.migrate()
    db = Database(setup)
    channel, _ = setup_org(db, events=CLOSED)
    channel = set_rule(db, channel, HOUR_S)
    _fill_overdue(db, channel, n)
    setup.close()
    start = threading.Barrier(closers)

    def closer() -> tuple[int, int]:
        storage = open_storage(database_url_for)
        mine = Database(storage)
        rounds = closed = 0
        start.wait()
        try:
            while True:
                result = mine._retrying(
                    lambda: mine.run_sync(
                        close_idle_conversations, clock=lambda: T0 + 2 * HOUR_MS, limit=50
                    )
                )
                rounds += 1
                closed += result.closed
                if result.claimed == 0:
                    return rounds, closed
        finally:
            storage.close()

    with ThreadPoolExecutor(closers) as pool:
        results = list(pool.map(lambda _: closer(), range(closers)))
    assert sum(closed for _, closed in results) == n
    check = Database(open_storage(database_url_for))
    try:
        events = closed_events(check)
        assert len(events) == n
        assert len({conversation_id for conversation_id, _ in events}) == n
        assert count(check, "SELECT count(*) FROM conversations WHERE status = 'open'") == 0
        assert count(check, "SELECT count(*) FROM deliveries") == n
        assert (
            count(
                check,
                "SELECT count(*) FROM conversations "
                "WHERE closed_reason = 'inactivity' AND done_at_ms = last_message_at_ms + "
                f"{HOUR_MS}",
            )
            == n
        )
    finally:
        check.storage.close()
    if check.dialect == "postgresql":
        # The work was shared, not done by one closer while the others waited for its locks.
        assert sum(1 for _, closed in results if closed > 0) >= 2


def test_the_sweep_uses_the_deadline_index(db: Database) -> None:
    """Finding what is due is a range scan of the partial index, never a scan of the table:
    what keeps a sweep cheap at a million open conversations (bench/inactivity.py)."""
    with db.storage.transaction(write=False) as tx:
        x = tx._x  # type: ignore[attr-defined]
        sql = (
            "SELECT id FROM conversations WHERE status = 'open' "
            "AND idle_deadline_ms <= 5 ORDER BY idle_deadline_ms LIMIT 100"
        )
        if db.dialect == "sqlite":
            plan = " ".join(str(r[-1]) for r in x("EXPLAIN QUERY PLAN " + sql).fetchall())
        else:
            x("SET LOCAL enable_seqscan = off")  # a tiny table: ask what the index can do
            rows = x("EXPLAIN (FORMAT JSON) " + sql).fetchall()
            plan = orjson.dumps(rows[0][0]).decode()
    assert "conversations_idle_deadline" in plan
