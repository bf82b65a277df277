"""The plans PostgreSQL keeps for our prepared statements, where a wrong one turns an update
by primary key into a walk through a backlog.

A connection plans a prepared statement once (a generic plan, PostgreSQL's choice after five
uses, forced here) and keeps that plan until the statistics change: made while the tables
were small, it stays while a backlog of thousands of openings waits for their profiles (a
slow Graph API), until autovacuum next analyses them. These tests make that case on purpose,
as a new install meets it (and every database the benchmarks make): no statistics yet, the
storage's own statements prepared on its own connection (pool_size=1) while a few events
wait, and then 3,000 waiting."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from convohook.storage.pg_pipeline import PREPARE_AFTER
from convohook.storage.postgres import PostgresStorage, PostgresTransaction

BACKLOG = 3000


def add_events(tx: PostgresTransaction, first: int, last: int, payload: bytes | None) -> None:
    """Events `evt_<first>`..`evt_<last>`, each with a pending delivery to webhook `wh`."""
    tx._x(
        "INSERT INTO events (id, org_id, channel_id, type, conversation_id, contact_id, "
        "payload, profile_deadline_ms, created_at_ms) "
        "SELECT 'evt_' || i, 'org', 'ch', 'conversation.opened', 'conv_' || i, "
        "'contact_' || i, ?, 60000, 0 FROM generate_series(?::integer, ?::integer) AS i",
        (payload, first, last),
    )
    tx._x(
        "INSERT INTO deliveries (id, org_id, event_id, webhook_id, status, created_at_ms, "
        "updated_at_ms) SELECT 'msg_' || i, 'org', 'evt_' || i, 'wh', ?, 0, 0 "
        "FROM generate_series(?::integer, ?::integer) AS i",
        ("pending" if payload is None else "succeeded", first, last),
    )


@pytest.fixture
def storage(postgres_url: str) -> Iterator[PostgresStorage]:
    """200 events sent and a few waiting when the statements are prepared, then a backlog."""
    store = PostgresStorage(postgres_url, pool_size=1)
    store.migrate()
    with store.transaction() as tx:
        tx._x("SET plan_cache_mode = force_generic_plan")  # the session's, for what follows
        tx._x("INSERT INTO orgs (id, name, created_at_ms) VALUES ('org', 'Acme', 0)")
        tx._x(
            "INSERT INTO webhooks (id, org_id, name, url, secret, channel_type, events, "
            "created_at_ms, updated_at_ms) "
            "VALUES ('wh', 'org', 'w', 'http://x.test', 's', 'INSTAGRAM', '[]', 0, 0)"
        )
        add_events(tx, 1, 200, b"{}")
        add_events(tx, BACKLOG + 1, BACKLOG + PREPARE_AFTER + 1, None)
    for i in range(BACKLOG + 1, BACKLOG + PREPARE_AFTER + 2):
        with store.transaction() as tx:
            tx.set_event_payload(f"evt_{i}", b"{}", 1000)
    with store.transaction() as tx:
        add_events(tx, 2 * BACKLOG, 3 * BACKLOG, None)
    yield store
    store.close()


def plan_of(tx: PostgresTransaction, starts: str, params: str) -> str:
    """The plan the connection keeps for its prepared statement that starts with `starts`."""
    [name] = [
        str(r[0])
        for r in tx._x("SELECT name, statement FROM pg_prepared_statements").fetchall()
        if str(r[1]).startswith(starts)
    ]
    return "\n".join(str(r[0]) for r in tx._x(f"EXPLAIN EXECUTE {name}({params})").fetchall())


def test_building_a_body_takes_its_event_and_deliveries_by_their_keys(
    storage: PostgresStorage,
) -> None:
    with storage.transaction() as tx:
        event = plan_of(tx, "UPDATE events SET payload", f"'{{}}'::bytea, 'evt_{2 * BACKLOG}'")
        deliveries = plan_of(
            tx, "UPDATE deliveries SET next_attempt_at_ms", f"1000, 'evt_{2 * BACKLOG}'"
        )
    assert "events_pkey" in event, event
    assert "deliveries_event_id_webhook_id_key" in deliveries, deliveries
