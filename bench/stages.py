"""Where an opening's time went inside convohook, read back from the run's own database.

Every step of an opening leaves its clock reading in a row: the notification's
`received_at_ms` (the storing transaction's `now`) and `processed_at_ms` (the processing
batch's), the contact's `profile_fetched_at_ms` (the transaction that recorded the lookup),
the first attempt's `attempted_at_ms` and `duration_ms`, and the delivery's `updated_at_ms`
(the transaction that recorded the attempt). Their differences, per opening, are the stages
below; the end-to-end latency the harness measures adds the inbound POST before and the
sink's receipt after. Milliseconds, as stored: a stage under 1 ms reads 0 or 1.

Read after the load has been measured and before the database is dropped; the warm-up's
notifications (the lowest ids) are left out."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import psycopg

STAGES = (
    ("stored→processing", "the stored notification until its processing batch began"),
    ("processing→profile", "the processing batch until the profile lookup was recorded"),
    ("profile→sending", "the recorded lookup until the webhook POST began"),
    ("POST", "the webhook POST, until the sink's answer"),
    ("answered→recorded", "the sink's answer until the attempt was recorded"),
    ("stored→answered", "the stored notification until the sink's answer"),
)

_QUERIES = {
    "notifications": "SELECT id, received_at_ms, processed_at_ms, body FROM notifications "
    "ORDER BY id",
    "messages": "SELECT mid, contact_id FROM messages",
    "events": "SELECT id, contact_id, created_at_ms FROM events "
    "WHERE type = 'conversation.opened' ORDER BY created_at_ms",
    "contacts": "SELECT id, profile_fetched_at_ms FROM contacts",
    "deliveries": "SELECT id, event_id, updated_at_ms FROM deliveries",
    "attempts": "SELECT delivery_id, attempt_number, attempted_at_ms, duration_ms FROM attempts",
}


def _rows(database_url: str) -> dict[str, list[Sequence[Any]]]:
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as lite:
            return {k: list(lite.execute(q).fetchall()) for k, q in _QUERIES.items()}
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        return {k: list(conn.execute(q).fetchall()) for k, q in _QUERIES.items()}


def _mids(body: bytes) -> Iterable[str]:
    for entry in orjson.loads(body).get("entry", ()):
        for item in entry.get("messaging", ()):
            mid = (item.get("message") or {}).get("mid")
            if mid:
                yield str(mid)


def _summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[max(1, math.ceil(q * len(ordered))) - 1], 1)

    return {"count": len(ordered), "p50": at(0.5), "p90": at(0.9), "p99": at(0.99)}


def stage_latencies(rows: dict[str, list[Sequence[Any]]], skip: int) -> dict[str, Any]:
    """Per stage: p50, p90, p99 (ms) over the openings of the notifications after the first
    `skip`. An opening whose customer's profile was not looked up in this run (known from
    the history) has no profile stages."""
    stored: dict[str, tuple[int, int | None]] = {}
    for _id, received, processed, body in rows["notifications"][skip:]:
        for mid in _mids(bytes(body)):
            stored[mid] = (int(received), None if processed is None else int(processed))
    contact_of = {str(mid): str(contact) for mid, contact in rows["messages"]}
    opening: dict[str, str] = {}
    for event_id, contact_id, _created in rows["events"]:
        opening.setdefault(str(contact_id), str(event_id))  # the contact's first opening
    profile_at = {str(c): p for c, p in rows["contacts"]}
    delivery_of: dict[str, tuple[str, int]] = {
        str(event_id): (str(d), int(updated)) for d, event_id, updated in rows["deliveries"]
    }
    first_attempt = {
        str(d): (int(at), float(duration))
        for d, number, at, duration in rows["attempts"]
        if number == 1
    }
    values: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    for mid, (received, processed) in stored.items():
        contact = contact_of.get(mid)
        event = opening.get(contact) if contact else None
        delivery = delivery_of.get(event) if event else None
        attempt = first_attempt.get(delivery[0]) if delivery else None
        if processed is None or delivery is None or attempt is None:
            continue
        attempted, duration = attempt
        answered = attempted + duration
        values["stored→processing"].append(processed - received)
        fetched = profile_at.get(contact or "")
        if fetched is not None and fetched >= processed:
            values["processing→profile"].append(fetched - processed)
            values["profile→sending"].append(attempted - fetched)
        values["POST"].append(duration)
        values["answered→recorded"].append(max(0.0, delivery[1] - answered))
        values["stored→answered"].append(answered - received)
    return {name: _summary(v) for name, v in values.items()}


def read(database_url: str, skip: int) -> dict[str, Any]:
    """`stage_latencies` of the run's database at `database_url`."""
    return stage_latencies(_rows(database_url), skip)


def describe(stages: dict[str, Any]) -> str:
    return (
        ", ".join(f"{name} {s['p50']}/{s['p99']}" for name, s in stages.items() if s["count"])
        + " (p50/p99 ms)"
    )
