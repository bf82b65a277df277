"""Migrations over data that was there before them, on both backends: a database migrated up to
an older version, filled as that version wrote it, then migrated to the newest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from convohook.storage import migrations
from convohook.storage.base import Storage
from convohook.storage.database import open_storage

from harness import admin_execute, database_url

T0 = 1_700_000_000_000


@pytest.fixture
def empty_url(backend: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database with no schema at all (the test template is migrated already)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("postgres_template")  # PostgreSQL is reachable, or skip/fail
    name = f"convohook_m_{tmp_path.name[-20:].lower().replace('-', '_')}"
    admin_execute(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    yield database_url(name)
    admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _migrated_up_to(url: str, version: int, monkeypatch: pytest.MonkeyPatch) -> Storage:
    load = migrations.load
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "load", lambda d: [m for m in load(d) if m.version <= version])
        storage = open_storage(url)
        storage.migrate()
    return storage


def _sql(storage: Storage, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with storage.transaction() as tx:
        cursor = tx._x(statement, params)  # type: ignore[attr-defined]
        return list(cursor.fetchall()) if statement.lstrip().startswith("SELECT") else []


def test_0007_fills_in_why_and_when_for_the_conversations_there(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _migrated_up_to(empty_url, 6, monkeypatch)
    for statement, params in [
        ("INSERT INTO orgs (id, name, created_at_ms) VALUES (?, ?, ?)", ("org_1", "Acme", T0)),
        (
            "INSERT INTO channels (id, org_id, type, handle, account_id, access_token, "
            "created_at_ms) VALUES ('ch_1', 'org_1', 'INSTAGRAM', 'acme', '1784', 't', ?)",
            (T0,),
        ),
        (
            "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, created_at_ms) "
            "VALUES ('ct_1', 'org_1', 'ch_1', '111', 'customer_AAAAAAAAAA', ?)",
            (T0,),
        ),
        (
            "INSERT INTO conversations (id, org_id, channel_id, contact_id, status, reason, "
            "opened_at_ms, done_at_ms) VALUES "
            "('conv_1', 'org_1', 'ch_1', 'ct_1', 'done', 'first_message', ?, ?), "
            "('conv_2', 'org_1', 'ch_1', 'ct_1', 'open', 'reopened', ?, NULL)",
            (T0, T0 + 100, T0 + 200),
        ),
        (
            "INSERT INTO messages (channel_id, mid, contact_id, conversation_id, kind, text, "
            "timestamp_ms, received_at_ms) VALUES "
            "('ch_1', 'm1', 'ct_1', 'conv_1', 'message', 'hi', ?, ?), "
            "('ch_1', 'm2', 'ct_1', 'conv_1', 'message', 'hi', ?, ?)",
            (T0 - 5, T0, T0 + 50, T0 + 51),
        ),
    ]:
        _sql(old, statement, params)
    old.close()

    storage = open_storage(empty_url)
    try:
        assert storage.migrate()[0].startswith("0007_")
        rows = _sql(
            storage,
            "SELECT id, closed_reason, last_message_at_ms, assignee_id FROM conversations "
            "ORDER BY id",
        )
    finally:
        storage.close()
    assert [tuple(r) for r in rows] == [
        ("conv_1", "manual", T0 + 50, None),  # closed by a person; its last message's time
        ("conv_2", None, T0 + 200, None),  # no message stored with it: when it opened
    ]


def test_0008_makes_every_user_an_available_agent_and_keeps_what_was_there(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _migrated_up_to(empty_url, 7, monkeypatch)
    for statement, params in [
        ("INSERT INTO orgs (id, name, created_at_ms) VALUES (?, ?, ?)", ("org_1", "Acme", T0)),
        (
            "INSERT INTO users (id, org_id, email, password_hash, created_at_ms) "
            "VALUES ('usr_1', 'org_1', 'ada@acme.test', 'scrypt$x', ?)",
            (T0,),
        ),
        (
            "INSERT INTO channels (id, org_id, type, handle, account_id, access_token, "
            "created_at_ms) VALUES ('ch_1', 'org_1', 'INSTAGRAM', 'acme', '1784', 't', ?)",
            (T0,),
        ),
        (
            "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, username, name, "
            "profile_status, profile_fetched_at_ms, created_at_ms) VALUES ('ct_1', 'org_1', "
            "'ch_1', '111', 'customer_AAAAAAAAAA', 'jane', 'Jane', 'ok', ?, ?)",
            (T0, T0),
        ),
        (
            "INSERT INTO conversations (id, org_id, channel_id, contact_id, status, reason, "
            "opened_at_ms, assignee_id) VALUES "
            "('conv_1', 'org_1', 'ch_1', 'ct_1', 'open', 'first_message', ?, 'usr_1')",
            (T0,),
        ),
        (
            "INSERT INTO events (id, org_id, channel_id, type, conversation_id, contact_id, "
            "payload, profile_deadline_ms, created_at_ms) VALUES ('evt_1', 'org_1', 'ch_1', "
            "'conversation.opened', 'conv_1', 'ct_1', ?, ?, ?)",
            (b'{"conversationOpened":true}', T0, T0),
        ),
    ]:
        _sql(old, statement, params)
    old.close()

    storage = open_storage(empty_url)
    try:
        assert storage.migrate()[0].startswith("0008_")
        users = _sql(storage, "SELECT id, email, name, available, password_hash FROM users")
        contacts = _sql(
            storage,
            "SELECT username, follower_count, is_user_follow_business, is_verified_user "
            "FROM contacts",
        )
        events = _sql(storage, "SELECT id, details FROM events")
        assignees = _sql(storage, "SELECT assignee_id FROM conversations")
        cursors = _sql(storage, "SELECT org_id FROM round_robin_cursors")
        with storage.transaction() as tx:  # and the agent reads as one
            agents = tx.list_agents("org_1", None, 10)
            session_user = tx.user_by_email("ada@acme.test")
    finally:
        storage.close()
    # Named after their email until someone renames them; round robin may pick them.
    assert [(r[0], r[1], r[2], bool(r[3]), r[4]) for r in users] == [
        ("usr_1", "ada@acme.test", "ada@acme.test", True, "scrypt$x")
    ]
    assert [(a.id, a.name, a.available) for a in agents] == [("usr_1", "ada@acme.test", True)]
    assert session_user is not None
    assert session_user.password_hash == "scrypt$x"
    # Instagram's extra fields are unknown for the contacts looked up before: null, not 0.
    assert [tuple(r) for r in contacts] == [("jane", None, None, None)]
    assert [tuple(r) for r in events] == [("evt_1", None)]
    assert [tuple(r) for r in assignees] == [("usr_1",)]
    assert cursors == []  # round robin starts at the first agent
