"""Held inserts (storage/held_inserts.py): what goes out, in which order, in which statements."""

from __future__ import annotations

import re

import pytest

from convohook.storage import migrations
from convohook.storage.held_inserts import TABLE_ORDER, HeldInserts, split_insert

CONTACT = "INSERT INTO contacts (id, channel_id) VALUES (?, ?)"
CONVERSATION = (
    "INSERT INTO conversations (id, contact_id, deadline) VALUES (?, ?, "
    "(SELECT ? + ch.after FROM channels ch WHERE ch.id = ?))"
)
RUN = "INSERT INTO bot_runs (id, key) VALUES (?, ?) ON CONFLICT (bot_id, key) DO NOTHING"


def test_rows_go_out_table_by_table_parents_first_whatever_the_order_written() -> None:
    held = HeldInserts()
    # A continuing customer's message first, then a new customer's contact and conversation.
    assert held.hold("INSERT INTO messages (mid, contact_id) VALUES (?, ?)", ("m1", "ct1"))
    assert held.hold(CONTACT, ("ct2", "ch"))
    assert held.hold(CONVERSATION, ("v2", "ct2", 5, "ch"))
    for mid in ("m2", "m3", "m4"):
        assert held.hold("INSERT INTO messages (mid, contact_id) VALUES (?, ?)", (mid, "ct2"))
    sent = held.take()
    assert [sql.split(" (")[0] for sql, _ in sent] == [
        "INSERT INTO contacts",
        "INSERT INTO conversations",
        "INSERT INTO messages",
    ]
    assert sent[2] == (
        "INSERT INTO messages (mid, contact_id) VALUES (?, ?), (?, ?), (?, ?), (?, ?)",
        ["m1", "ct1", "m2", "ct2", "m3", "ct2", "m4", "ct2"],
    )
    assert not held
    assert held.take() == []


def test_rows_keep_their_subqueries_and_conflict_clause_and_go_in_few_shapes() -> None:
    held = HeldInserts()
    for i in range(37):
        held.hold(CONVERSATION, (f"v{i}", f"ct{i}", i, "ch"))
        held.hold(RUN, (f"r{i}", f"k{i}"))
    sent = held.take()
    conversations = [(sql, params) for sql, params in sent if "conversations" in sql]
    # 37 = 16 + 16 + 4 + 1: statement texts repeat, so the driver can prepare them.
    assert [sql.count("(SELECT ?") for sql, _ in conversations] == [16, 16, 4, 1]
    assert [p for _, params in conversations for p in params[:1]] == ["v0", "v16", "v32", "v36"]
    assert sum(len(params) for _, params in conversations) == 37 * 4
    runs = [sql for sql, _ in sent if "bot_runs" in sql]
    assert all(sql.endswith(") ON CONFLICT (bot_id, key) DO NOTHING") for sql in runs)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO notifications (body, received_at_ms) VALUES (?, ?) RETURNING id",
        "INSERT INTO webhooks (id, name) VALUES (?, ?)",  # not a table held
        "UPDATE contacts SET name = ? WHERE id = ?",
        "INSERT INTO contacts (id) SELECT id FROM other",
        "INSERT INTO contacts (id) VALUES (?), (?)",
    ],
)
def test_what_cannot_be_held_is_refused_to_be_sent_at_once(sql: str) -> None:
    held = HeldInserts()
    assert not held.hold(sql, ("x",))
    assert not held


def test_split_finds_the_row_past_nested_parentheses() -> None:
    assert split_insert(CONVERSATION) == (
        "conversations",
        "INSERT INTO conversations (id, contact_id, deadline) VALUES ",
        "(?, ?, (SELECT ? + ch.after FROM channels ch WHERE ch.id = ?))",
        "",
    )


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_every_foreign_key_among_held_tables_points_to_one_sent_earlier(dialect: str) -> None:
    schema = "\n".join(m.sql for m in migrations.load(dialect))
    references: dict[str, set[str]] = {}
    for table in TABLE_ORDER:
        created = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", schema, re.S)
        assert created is not None, table
        added = re.findall(rf"ALTER TABLE {table} ADD COLUMN [^;]*REFERENCES (\w+)", schema)
        references[table] = set(re.findall(r"REFERENCES (\w+)", created.group(1))) | set(added)
    for table, parents in references.items():
        for parent in parents & set(TABLE_ORDER):
            assert TABLE_ORDER.index(parent) < TABLE_ORDER.index(table), (table, parent)
    # The check sees the keys it is about.
    assert "contacts" in references["conversations"]
    assert "deliveries" in references["attempts"]
