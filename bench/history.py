"""Pre-populate a migrated convohook database with N past customers, written directly in SQL.

Each customer has a contact (profile known), one conversation (every other one marked done) and
its first message, dated over the past week; with `outbox`, also the Conversation Opened event,
its delivery (succeeded) and the attempt that delivered it, as 30 days of traffic would leave
before retention removes them. Ids have the right prefixes and are deterministic
(`ct_00…0042`): they sort before any id made today, as older ids do.

SQLite: executemany in transactions of 10,000 rows. PostgreSQL: COPY, then VACUUM ANALYZE (the
state autovacuum would reach), so the measurement does not run beside a vacuum of the load.
About 1,000,000 customers a minute or two on either.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import psycopg

from convohook.domain.ids import BASE62
from convohook.domain.payload import CustomerProfile, conversation_opened_body

from common import HANDLE, history_igsid, history_username

CHUNK = 10_000
DAY_MS = 86_400_000
Row = tuple[Any, ...]

COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": (
        "id",
        "org_id",
        "channel_id",
        "igsid",
        "customer_id",
        "username",
        "name",
        "profile_status",
        "profile_fetched_at_ms",
        "created_at_ms",
    ),
    "conversations": (
        "id",
        "org_id",
        "channel_id",
        "contact_id",
        "status",
        "reason",
        "opened_at_ms",
        "done_at_ms",
    ),
    "messages": (
        "channel_id",
        "mid",
        "contact_id",
        "conversation_id",
        "kind",
        "text",
        "timestamp_ms",
        "received_at_ms",
    ),
    "events": (
        "id",
        "org_id",
        "channel_id",
        "type",
        "conversation_id",
        "contact_id",
        "reason",
        "payload",
        "profile_attempts",
        "profile_next_at_ms",
        "profile_deadline_ms",
        "first_message_text",
        "first_message_at_ms",
        "created_at_ms",
    ),
    "deliveries": (
        "id",
        "org_id",
        "event_id",
        "webhook_id",
        "status",
        "attempt_count",
        "next_attempt_at_ms",
        "lease_until_ms",
        "last_status_code",
        "last_error",
        "created_at_ms",
        "updated_at_ms",
    ),
    "attempts": (
        "delivery_id",
        "attempt_number",
        "attempted_at_ms",
        "url",
        "status_code",
        "response_body",
        "duration_ms",
        "error",
        "error_class",
    ),
}


@dataclass(frozen=True, slots=True)
class Owner:
    """The org, channel and webhook the history belongs to (the template has one of each)."""

    org_id: str
    channel_id: str
    webhook_id: str
    webhook_url: str


def _id(prefix: str, i: int) -> str:
    return f"{prefix}_00{i:024d}"


def _customer_id(i: int) -> str:
    digits = []
    for _ in range(9):
        i, r = divmod(i, 62)
        digits.append(BASE62[r])
    return "customer_H" + "".join(reversed(digits))


def _contact(i: int, t: int, o: Owner) -> Row:
    return (
        _id("ct", i),
        o.org_id,
        o.channel_id,
        history_igsid(i),
        _customer_id(i),
        history_username(i),
        f"History {i}",
        "ok",
        t,
        t,
    )


def _conversation(i: int, t: int, o: Owner) -> Row:
    status, done_at = ("done", t + 60_000) if i % 2 == 0 else ("open", None)
    conversation, contact = _id("conv", i), _id("ct", i)
    return (conversation, o.org_id, o.channel_id, contact, status, "first_message", t, done_at)


def _message(i: int, t: int, o: Owner) -> Row:
    return (o.channel_id, f"hist-{i}", _id("ct", i), _id("conv", i), "message", "hi", t, t)


def _event(i: int, t: int, o: Owner) -> Row:
    profile = CustomerProfile(history_username(i), f"History {i}")
    payload = conversation_opened_body(
        business_handle=HANDLE, profile=profile, customer_id=_customer_id(i)
    )
    return (
        _id("evt", i),
        o.org_id,
        o.channel_id,
        "conversation.opened",
        _id("conv", i),
        _id("ct", i),
        "first_message",
        payload,
        0,
        0,
        t + 60_000,
        "hi",
        t,
        t,
    )


def _delivery(i: int, t: int, o: Owner) -> Row:
    msg, event = _id("msg", i), _id("evt", i)
    return (msg, o.org_id, event, o.webhook_id, "succeeded", 1, None, None, 200, None, t, t)


def _attempt(i: int, t: int, o: Owner) -> Row:
    return (_id("msg", i), 1, t, o.webhook_url, 200, "ok", 1.0, None, None)


ROW_MAKERS: dict[str, Callable[[int, int, Owner], Row]] = {
    "contacts": _contact,
    "conversations": _conversation,
    "messages": _message,
    "events": _event,
    "deliveries": _delivery,
    "attempts": _attempt,
}


def rows(table: str, owner: Owner, count: int, now_ms: int) -> Iterator[Row]:
    """The rows of `table` for customers 0 … count - 1, dated over the past week."""
    make = ROW_MAKERS[table]
    base = now_ms - 7 * DAY_MS
    span = 6 * DAY_MS
    for i in range(count):
        yield make(i, base + i * span // count, owner)


def tables(outbox: bool) -> list[str]:
    base = ["contacts", "conversations", "messages"]
    return [*base, "events", "deliveries", "attempts"] if outbox else base


def _chunks(it: Iterator[Row]) -> Iterator[list[Row]]:
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def _owner_query(fetch: Callable[[str], Row | None]) -> Owner:
    channel = fetch("SELECT org_id, id FROM channels ORDER BY id LIMIT 1")
    webhook = fetch("SELECT id, url FROM webhooks ORDER BY id LIMIT 1")
    if channel is None or webhook is None:
        raise ValueError("the database has no channel or no webhook to attach the history to")
    return Owner(channel[0], channel[1], webhook[0], webhook[1])


def populate_sqlite(path: str, count: int, *, outbox: bool) -> dict[str, Any]:
    started = time.perf_counter()
    now_ms = int(time.time() * 1000)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous = OFF")  # a template being built: no power cut to survive
        conn.execute("PRAGMA cache_size = -262144")  # 256 MB
        owner = _owner_query(lambda sql: conn.execute(sql).fetchone())
        for table in tables(outbox):
            cols = COLUMNS[table]
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for chunk in _chunks(rows(table, owner, count, now_ms)):
                conn.execute("BEGIN")
                conn.executemany(sql, chunk)
                conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return {
        "customers": count,
        "outbox": outbox,
        "seconds": round(time.perf_counter() - started, 1),
    }


def populate_postgres(url: str, count: int, *, outbox: bool) -> dict[str, Any]:
    started = time.perf_counter()
    now_ms = int(time.time() * 1000)
    with psycopg.connect(url) as conn:
        owner = _owner_query(lambda sql: conn.execute(sql).fetchone())
        for table in tables(outbox):
            cols = ", ".join(COLUMNS[table])
            with conn.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows(table, owner, count, now_ms):
                    copy.write_row(row)
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "customers": count,
        "outbox": outbox,
        "seconds": round(time.perf_counter() - started, 1),
    }
