"""PostgreSQL transactions on the event loop (`run_on_loop`, `LoopPool`): no thread per
transaction, at most `size` connections, and a broken connection or an outage costs one
failed transaction, not the pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import psycopg
import pytest

from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.storage.errors import UnavailableError
from convohook.storage.loop_pool import LoopPool
from convohook.storage.postgres import PostgresStorage

from harness import ADMIN_URL, admin_execute


@pytest.fixture
def storage(postgres_url: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(postgres_url, pool_size=2)
    store.migrate()
    yield store
    store.close()


def migrations(tx: Transaction) -> set[int]:
    return tx.applied_migrations()


def backends(name: str) -> int:
    """The database's connections that convohook opened."""
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'convohook'",
            (name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_database_runs_postgresql_transactions_on_the_loop_thread(
    storage: PostgresStorage,
) -> None:
    seen: list[str] = []

    def body(tx: Transaction) -> set[int]:
        seen.append(threading.current_thread().name)
        return migrations(tx)

    db = Database(storage, threads=4)
    results = await asyncio.gather(*(db.run(body) for _ in range(6)), db.read(body))
    assert all(results)
    assert set(seen) == {threading.current_thread().name}
    assert not db._executor._threads, "no executor thread was started"


async def test_at_most_size_connections_and_waiters_served_in_turn(postgres_url: str) -> None:
    pool = LoopPool(postgres_url, size=2, connect_timeout=5, kwargs={})
    try:
        first, second = await pool.acquire(), await pool.acquire()
        third = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        assert not third.done(), "a third connection was opened past the size"
        pool.release(first)
        assert await asyncio.wait_for(third, 5) is first
        pool.release(second)
        pool.release(first)
    finally:
        pool.close()
    assert first.closed
    assert second.closed


async def test_a_cancelled_waiter_gives_up_its_turn(postgres_url: str) -> None:
    pool = LoopPool(postgres_url, size=1, connect_timeout=5, kwargs={})
    try:
        only = await pool.acquire()
        gone = asyncio.ensure_future(pool.acquire())
        after = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        gone.cancel()
        pool.release(only)
        assert await asyncio.wait_for(after, 5) is only
        pool.release(only)
    finally:
        pool.close()


async def test_a_connection_the_server_dropped_fails_one_transaction_only(
    storage: PostgresStorage, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    assert await storage.run_on_loop(migrations, write=False)
    admin_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND application_name = 'convohook'"
    )
    with pytest.raises(UnavailableError, match="PostgreSQL is not available"):
        await storage.run_on_loop(migrations, write=False)
    assert await storage.run_on_loop(migrations, write=False)


async def test_an_outage_fails_at_once_and_the_first_transaction_after_it_connects(
    storage: PostgresStorage, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    admin_execute(
        f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()",
    )
    try:
        for _ in range(3):  # each tries to connect, none waits for a schedule
            with pytest.raises(UnavailableError, match="not currently accepting connections"):
                await asyncio.wait_for(storage.run_on_loop(migrations, write=False), 5)
    finally:
        admin_execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    assert await asyncio.wait_for(storage.run_on_loop(migrations, write=False), 5)


async def test_a_transaction_cancelled_mid_statement_does_not_come_back_to_the_pool(
    storage: PostgresStorage, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    waiting = asyncio.Event()

    def waits_for_the_lock(tx: Transaction) -> None:
        waiting.set()
        tx._x("SELECT pg_advisory_xact_lock(42)").fetchall()  # type: ignore[attr-defined]

    with psycopg.connect(postgres_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(42)")
        task = asyncio.ensure_future(storage.run_on_loop(waits_for_the_lock))
        await waiting.wait()
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other.execute("SELECT pg_advisory_unlock(42)")
    # Both of its connections can be had again, and work.
    results = await asyncio.gather(
        *(storage.run_on_loop(migrations, write=False) for _ in range(4))
    )
    assert all(results)
    assert backends(name) <= 2 + 1  # the loop's two, and the thread side's one


def test_closing_after_the_loop_is_gone_closes_the_connections(
    storage: PostgresStorage, postgres_url: str
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    assert asyncio.run(storage.run_on_loop(migrations, write=False))
    assert backends(name) >= 1
    storage.close()
    for _ in range(50):
        if backends(name) == 0:
            break
        threading.Event().wait(0.1)
    assert backends(name) == 0
