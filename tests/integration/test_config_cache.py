"""Processing keeps what it read of channels, webhooks and bots across transactions
(storage/config_cache.py): a change committed anywhere, by this process or another, is seen by
the next processing transaction, and what only the hot path writes keeps the cache."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_storage_contract import T0, setup_org

from convohook.domain.bots import Conditions
from convohook.domain.model import Bot, Channel
from convohook.storage.base import Storage, Transaction
from convohook.storage.config_cache import MISSING, ConfigCache
from convohook.storage.database import Database
from convohook.storage.postgres import PostgresStorage
from convohook.storage.sqlite import SQLiteStorage

OPENED = "conversation.opened"


def _open(url: str) -> Storage:
    return SQLiteStorage(url) if url.startswith("sqlite") else PostgresStorage(url, pool_size=2)


@pytest.fixture
def two(database_url_for: str) -> Iterator[tuple[Database, Database]]:
    """Two processes on one database: the one that processes, and the one that configures."""
    first, second = _open(database_url_for), _open(database_url_for)
    first.migrate()
    yield Database(first, threads=1), Database(second, threads=1)
    first.close()
    second.close()


Seen = tuple[Channel | None, list[str], list[str]]


def _seen(db: Database) -> Seen:
    """What a processing transaction sees of the test's channel."""

    def read(tx: Transaction) -> Seen:
        tx.use_cached_config()
        channel = tx.channel_by_account("1784")
        if channel is None:
            return None, [], []
        bots = [b.id for b in tx.bots_for(channel.org_id, OPENED)]
        return channel, tx.subscriber_ids(channel.id, OPENED), bots

    return db.run_sync(read)


def _bot(org_id: str, bot_id: str = "bot_1") -> Bot:
    return Bot(bot_id, org_id, "Greeter", OPENED, f"tok_{bot_id}", T0, Conditions())


def test_a_change_by_another_process_is_seen_by_the_next_processing(
    two: tuple[Database, Database],
) -> None:
    processor, admin = two
    channel, webhook = setup_org(admin)
    assert _seen(processor) == (channel, ["wh_1"], [])

    second = replace(webhook, id="wh_2", secret="whsec_" + "B" * 43)
    admin.run_sync(lambda tx: tx.insert_webhook(second))
    assert _seen(processor)[1] == ["wh_1", "wh_2"]

    admin.run_sync(lambda tx: tx.disable_webhook("wh_2", "by hand", T0))
    assert _seen(processor)[1] == ["wh_1"]

    admin.run_sync(lambda tx: tx.update_webhook(replace(webhook, events=("conversation.closed",))))
    assert _seen(processor)[1] == []

    admin.run_sync(lambda tx: tx.update_webhook(replace(webhook, channel_ids=())))
    admin.run_sync(lambda tx: tx.update_webhook(replace(webhook, channel_ids=(channel.id,))))
    assert _seen(processor)[1] == ["wh_1"]

    admin.run_sync(lambda tx: tx.insert_bot(_bot(channel.org_id)))
    assert _seen(processor)[2] == ["bot_1"]
    admin.run_sync(lambda tx: tx.update_bot(replace(_bot(channel.org_id), enabled=False)))
    assert _seen(processor)[2] == []

    renamed = replace(channel, handle="acme_shop", access_token="tok2")
    admin.run_sync(lambda tx: tx.update_channel(renamed))
    assert _seen(processor)[0] == renamed

    admin.run_sync(lambda tx: tx.delete_webhook(channel.org_id, "wh_1"))
    assert _seen(processor)[1] == []


def test_what_the_hot_path_writes_keeps_the_cache(two: tuple[Database, Database]) -> None:
    """A webhook's failure streak and a channel's inactivity reschedule change often; they are
    not what processing reads, and bumping the version for them would only empty the cache."""
    processor, admin = two
    channel, _ = setup_org(admin)
    first = _seen(processor)

    def hot_path(tx: Transaction) -> None:
        tx.webhook_failing("wh_1", T0)
        tx.webhook_healthy("wh_1")
        tx.start_rescheduling(channel.id)
        tx.rescheduled(channel.id, None)

    admin.run_sync(hot_path)
    again = _seen(processor)
    assert again == first
    assert again[0] is first[0]  # the very object read before: no statement ran for it


def test_without_use_cached_config_every_read_goes_to_the_database(db: Database) -> None:
    """Configuration use cases read the tables: what they change, they see at once."""
    channel, _ = setup_org(db)
    assert _seen(db)[0] == channel

    def rename_and_read(tx: Transaction) -> Channel | None:
        tx.update_channel(replace(channel, handle="acme_shop"))
        return tx.channel_by_account("1784")

    renamed = db.run_sync(rename_and_read)
    assert renamed is not None
    assert renamed.handle == "acme_shop"
    assert db.run_sync(lambda tx: tx.channel_by_account("1784")) is not _seen(db)[0]


def test_an_older_reader_leaves_newer_entries_alone() -> None:
    cache = ConfigCache()
    cache.put(2, "k", "new")
    cache.put(1, "k", "old")  # a transaction that started before the change
    assert cache.get(2, "k") == "new"
    assert cache.get(1, "k") is MISSING
    cache.put(3, "j", "newer")
    assert cache.get(3, "k") is MISSING
    assert cache.get(3, "j") == "newer"


def test_migrations_from_a_file_split_trigger_bodies_whole(tmp_path: Path) -> None:
    from convohook.storage.sqlite import _statements

    sql = (
        "-- a comment; with a semicolon\nCREATE TABLE t (n INTEGER);\n"
        "CREATE TRIGGER b AFTER INSERT ON t\nBEGIN UPDATE t SET n = n + 1; SELECT 1; END;\n"
        "INSERT INTO t VALUES (1);\n"
    )
    assert _statements(sql) == [
        "CREATE TABLE t (n INTEGER)",
        "CREATE TRIGGER b AFTER INSERT ON t\nBEGIN UPDATE t SET n = n + 1; SELECT 1; END",
        "INSERT INTO t VALUES (1)",
    ]
