"""SQLite's transactions run on the event loop; durability comes from the log's group fsync, and
a lock held by another process is waited for in a thread, never on the loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, cast

import pytest

from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.storage.errors import UnavailableError
from convohook.storage.sqlite import SQLiteStorage, SQLiteTransaction
from convohook.usecases.orgs import create_org

from harness import eventually

NOW = 1_760_000_000_000


def org_names(path: Path) -> list[str]:
    """What another connection (another process, after a crash) sees committed."""
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM orgs ORDER BY name")]


class SpiedStorage(SQLiteStorage):
    """Records, at each fsync of the log, which orgs were committed when it started."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0) -> None:
        super().__init__(f"sqlite:///{path}", busy_timeout_s=busy_timeout_s)
        self.path = path
        self.synced: list[list[str]] = []

    def sync_log(self) -> None:
        seen = org_names(self.path)
        super().sync_log()
        self.synced.append(seen)


@pytest.fixture
def spied(tmp_path: Path) -> SpiedStorage:
    storage = SpiedStorage(tmp_path / "convohook.db", busy_timeout_s=2.0)
    storage.migrate()
    return storage


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process writing: it holds SQLite's one write lock until it commits."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


def add_org(tx: Transaction, name: str) -> None:
    create_org(tx, name, NOW)


async def test_a_durable_write_returns_after_an_fsync_that_began_after_its_commit(
    spied: SpiedStorage,
) -> None:
    db = Database(spied)
    await db.run(add_org, "acme")
    assert spied.synced == [["acme"]]
    await asyncio.gather(*(db.run(add_org, f"org{i}") for i in range(20)))
    # Twenty commits, far fewer fsyncs, and the last one saw all twenty.
    assert 2 <= len(spied.synced) <= 21
    assert len(spied.synced[-1]) == 21
    db.close()


async def test_relaxed_writes_and_reads_do_not_wait_for_the_disk(spied: SpiedStorage) -> None:
    db = Database(spied)
    await db.relaxed.run(add_org, "acme")
    await db.relaxed.run_retrying(add_org, "globex")
    assert await db.read(lambda tx: tx.applied_migrations())
    assert spied.synced == []
    assert org_names(spied.path) == ["acme", "globex"]
    db.close()


async def test_a_lock_held_elsewhere_is_waited_for_in_a_thread_with_the_loop_free(
    spied: SpiedStorage,
) -> None:
    db = Database(spied)
    other = hold_write_lock(spied.path)
    first = asyncio.create_task(db.run(add_org, "acme"))
    second = asyncio.create_task(db.run_retrying(add_org, "globex"))
    ticks = 0
    while ticks < 20:  # the loop keeps running other tasks while both wait for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not first.done()
    assert not second.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.gather(first, second)
    assert org_names(spied.path) == ["acme", "globex"]
    # And once the thread is done with the connection, writes run on the loop again.
    await db.run(add_org, "initech")
    assert org_names(spied.path) == ["acme", "globex", "initech"]
    db.close()


async def test_a_lock_held_past_the_busy_timeout_is_an_outage_and_changes_nothing(
    spied: SpiedStorage,
) -> None:
    db = Database(spied)
    other = hold_write_lock(spied.path)
    with pytest.raises(UnavailableError, match="locked"):
        await db.run(add_org, "acme")
    other.execute("ROLLBACK")
    other.close()
    assert org_names(spied.path) == []
    assert spied.synced == []
    db.close()


def _pragma(tx: Transaction, name: str) -> Any:
    return cast(SQLiteTransaction, tx)._x(f"PRAGMA {name}").fetchone()[0]


async def test_the_log_is_copied_into_the_database_by_a_thread_not_by_a_commit(
    spied: SpiedStorage,
) -> None:
    db = Database(spied)
    # The commits on the loop never checkpoint: that would write and sync the file there.
    assert await db.read(_pragma, "wal_autocheckpoint") == 0
    before = spied.path.stat().st_size
    # Well under SQLite's own threshold (1,000 pages), so only our checkpointer copies these.
    await asyncio.gather(*(db.run(add_org, f"org{i:03}-" + "x" * 2000) for i in range(100)))

    async def copied() -> bool:
        return spied.path.stat().st_size > before + 100 * 2000

    await eventually(copied)
    db.close()


async def test_a_caller_giving_up_on_a_waiting_write_leaves_the_connection_to_the_thread(
    spied: SpiedStorage,
) -> None:
    db = Database(spied)
    other = hold_write_lock(spied.path)
    abandoned = asyncio.create_task(db.run(add_org, "acme"))
    await asyncio.sleep(0.05)  # in the thread, waiting for the lock
    abandoned.cancel()
    # The thread is still inside that transaction: this one must queue behind it, not run on
    # the loop (which would block the loop on the connection until the lock wait timed out).
    later = asyncio.create_task(db.run(add_org, "globex"))
    await asyncio.sleep(0.05)
    other.execute("COMMIT")
    other.close()
    await later
    assert abandoned.cancelled()
    # The abandoned write was already under way in the thread: it committed all the same.
    assert org_names(spied.path) == ["acme", "globex"]
    db.close()
