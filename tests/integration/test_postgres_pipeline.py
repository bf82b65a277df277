"""PostgreSQL transactions over libpq's pipeline (storage/pg_pipeline.py), on a real server:
what psycopg's cursors did for us and this must do itself. One connection (pool_size=1), so
every transaction finds what the one before it left on the connection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from convohook.storage import pg_pipeline
from convohook.storage.errors import ConflictError, UnavailableError
from convohook.storage.pg_pipeline import PREPARE_AFTER
from convohook.storage.postgres import PostgresStorage, PostgresTransaction
from convohook.storage.sql import Cursor


@pytest.fixture
def storage(postgres_url: str) -> Iterator[PostgresStorage]:
    store = PostgresStorage(postgres_url, pool_size=1)
    store.migrate()
    with store.transaction() as tx:
        tx._x("CREATE TABLE pipeline_probe (k INTEGER PRIMARY KEY, v TEXT, b BYTEA)")
    yield store
    store.close()


def prepared(tx: PostgresTransaction) -> list[str]:
    rows = tx._x("SELECT statement FROM pg_prepared_statements ORDER BY name").fetchall()
    return [str(r[0]) for r in rows]


def test_values_go_in_and_come_out_as_psycopg_adapts_them(storage: PostgresStorage) -> None:
    with storage.transaction() as tx:
        tx._x("INSERT INTO pipeline_probe (k, v, b) VALUES (?, ?, ?)", (1, "é\x00nul", b"\x00\xff"))
        tx._x("INSERT INTO pipeline_probe (k, v, b) VALUES (?, ?, ?)", (2, None, None))
        rows = tx._x("SELECT k, v, b FROM pipeline_probe ORDER BY k").fetchall()
        assert tx._x("SELECT 1 WHERE FALSE").fetchone() is None
        assert tx._x("UPDATE pipeline_probe SET v = 'x' WHERE k > ?", (0,)).rowcount == 2
    # NUL is not storable in text: it becomes U+FFFD (postgres._storable); bytes stay bytes.
    assert rows == [(1, "é\ufffdnul", b"\x00\xff"), (2, None, None)]


def test_a_statement_is_prepared_after_its_fifth_use_and_then_reused(
    storage: PostgresStorage,
) -> None:
    sql = "SELECT k FROM pipeline_probe WHERE k = ?"
    for use in range(1, PREPARE_AFTER + 3):
        with storage.transaction() as tx:
            assert tx._x(sql, (use,)).fetchall() == []
            statements = [s for s in prepared(tx) if "pipeline_probe" in s]
        assert len(statements) == (1 if use >= PREPARE_AFTER else 0), use


def test_an_in_list_is_never_prepared(storage: PostgresStorage) -> None:
    for _ in range(PREPARE_AFTER + 2):
        with storage.transaction() as tx:
            tx._x("SELECT k FROM pipeline_probe WHERE k IN (?, ?)", (1, 2)).fetchall()
            assert not [s for s in prepared(tx) if "pipeline_probe" in s]


def test_an_error_rolls_back_everything_and_the_connection_is_clean_after(
    storage: PostgresStorage,
) -> None:
    with storage.transaction() as tx:
        tx._x("INSERT INTO pipeline_probe (k) VALUES (?)", (1,))

    def duplicate() -> None:
        with storage.transaction() as tx:
            tx._x("INSERT INTO pipeline_probe (k) VALUES (?)", (2,))
            tx._x("INSERT INTO pipeline_probe (k) VALUES (?)", (1,))  # duplicate key
            tx._x("INSERT INTO pipeline_probe (k) VALUES (?)", (3,))

    with pytest.raises(ConflictError):
        duplicate()
    with storage.transaction(write=False) as tx:
        assert tx._x("SELECT k FROM pipeline_probe ORDER BY k").fetchall() == [(1,)]


def test_an_exception_in_the_use_case_discards_what_it_sent(storage: PostgresStorage) -> None:
    def changes_its_mind() -> None:
        with storage.transaction() as tx:
            tx._x("INSERT INTO pipeline_probe (k) VALUES (?)", (7,))  # sent, never read
            raise RuntimeError("the use case changed its mind")

    with pytest.raises(RuntimeError):
        changes_its_mind()
    with storage.transaction(write=False) as tx:
        assert tx._x("SELECT count(*) FROM pipeline_probe").fetchone() == (0,)


def test_a_result_is_read_with_the_commit_and_never_after_a_rollback(
    storage: PostgresStorage,
) -> None:
    with storage.transaction() as tx:
        later = tx._x("SELECT 41 + 1")  # not read in the transaction
    assert later.fetchone() == (42,)

    skipped: list[Cursor] = []

    def fails_before_it() -> None:
        with storage.transaction() as tx:
            tx._x("SELECT 1 / 0")
            skipped.append(tx._x("SELECT 1"))  # not run: the error skips to the sync
            raise RuntimeError("the use case stopped there")

    with pytest.raises(RuntimeError):
        fails_before_it()
    # Its connection is back in the pool (and maybe another transaction's): never synced.
    with pytest.raises(psycopg.InterfaceError, match="ended without it"):
        skipped[0].fetchall()
    with storage.transaction(write=False) as tx:
        assert tx._x("SELECT 2").fetchone() == (2,)


def test_a_preparation_skipped_by_an_earlier_error_is_made_again(
    storage: PostgresStorage,
) -> None:
    sql = "SELECT k FROM pipeline_probe WHERE k = ?"
    for use in range(1, PREPARE_AFTER):
        with storage.transaction() as tx:
            tx._x(sql, (use,)).fetchall()

    # The fifth use prepares it, in a pipeline an earlier statement has already aborted: the
    # server skips the preparation. Believing it made would fail every later use.
    def aborted() -> None:
        with storage.transaction() as tx:
            tx._x("SELECT 1 / ?", (0,))
            tx._x(sql, (5,)).fetchall()

    with pytest.raises(psycopg.errors.DivisionByZero):
        aborted()
    for use in range(6, 9):
        with storage.transaction() as tx:
            assert tx._x(sql, (use,)).fetchall() == []


def test_a_thread_waiting_for_a_row_lock_lets_the_others_run(storage: PostgresStorage) -> None:
    """The wait for the server's answer releases the interpreter lock (libpq's own wait in
    `get_result` would not): here the holder of the lock can only commit if it does."""
    two = PostgresStorage(storage.url, pool_size=1)
    try:
        with storage.transaction() as tx:
            tx._x("INSERT INTO pipeline_probe (k, v) VALUES (1, 'a')")
        waited: list[Any] = []
        holding = storage.transaction()
        tx = holding.__enter__()
        tx._x("SELECT v FROM pipeline_probe WHERE k = 1 FOR UPDATE").fetchall()

        def waiter() -> None:
            with two.transaction() as other:
                waited.extend(
                    other._x("SELECT v FROM pipeline_probe WHERE k = 1 FOR UPDATE").fetchall()
                )

        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)  # the waiter is in the server's lock queue by now
        ran = sum(range(100_000))  # needs the interpreter lock the waiter must not hold
        tx._x("UPDATE pipeline_probe SET v = 'b' WHERE k = 1")
        holding.__exit__(None, None, None)
        thread.join(10)
        assert not thread.is_alive()
        assert ran
        assert waited == [("b",)]
    finally:
        two.close()


def test_a_dead_connection_is_an_outage_and_the_pool_replaces_it(
    storage: PostgresStorage,
) -> None:
    with storage.transaction() as tx:
        [pid] = tx._x("SELECT pg_backend_pid()").fetchone()
    with psycopg.connect(storage.url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(UnavailableError), storage.transaction() as tx:
        tx._x("SELECT 1").fetchall()
    with storage.transaction() as tx:
        assert tx._x("SELECT 1").fetchall() == [(1,)]


def test_a_server_that_stops_answering_is_an_outage_and_the_connection_is_replaced(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Silence past `ANSWER_TIMEOUT_S` (a network gone quiet, a server frozen) ends the wait:
    the transaction fails as an outage instead of hanging, and the connection, in no state to
    be reused, is closed for the pool to replace."""
    monkeypatch.setattr(pg_pipeline, "ANSWER_TIMEOUT_S", 0.3)
    with storage.transaction() as tx:
        [pid] = tx._x("SELECT pg_backend_pid()").fetchone()
    started = time.monotonic()
    silent = pytest.raises(UnavailableError, match=r"no answer from PostgreSQL in 0\.3 s")
    with silent, storage.transaction() as tx:
        tx._x("SELECT pg_sleep(5)").fetchall()
    assert time.monotonic() - started < 4
    with storage.transaction() as tx:
        [(new_pid,)] = tx._x("SELECT pg_backend_pid()").fetchall()
    assert new_pid != pid
