"""PostgreSQL's NOTIFY wakes the other processes' workers, not the writer's own: whatever writes
work in a process wakes its loops itself, and the echo made each of them run an empty round. A
process that sees no other listening sends none."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from convohook.storage.postgres import CHANNEL, LISTENER_NAME, PostgresStorage

WAIT_S = 10.0


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[tuple[PostgresStorage, PostgresStorage]]:
    # Two storages stand for two processes: each names itself in its NOTIFYs.
    here, there = PostgresStorage(postgres_url, pool_size=1), PostgresStorage(postgres_url)
    yield here, there
    here.close()
    there.close()


def listening(storage: PostgresStorage) -> tuple[queue.Queue[str], threading.Event]:
    heard: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=storage.listen, args=(heard.put, stop), daemon=True).start()
    assert heard.get(timeout=WAIT_S) == "*"  # listening from here on
    return heard, stop


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {WAIT_S:g} s"
        time.sleep(0.05)


def test_a_process_hears_the_others_work_and_passes_over_its_own(
    two_processes: tuple[PostgresStorage, PostgresStorage], postgres_url: str
) -> None:
    here, there = two_processes
    heard, stop = listening(here)
    try:
        with here.transaction() as tx:
            tx.insert_notifications([b"{}"], 1)  # this process's own: its loops were woken
        with there.transaction() as tx:
            tx.insert_notifications([b"{}"], 2)
            tx.reschedule_delivery("no-such-delivery", 2)
        # NOTIFYs arrive in commit order: had the first been reported, it would come first.
        assert [heard.get(timeout=WAIT_S), heard.get(timeout=WAIT_S)] == [
            "deliveries",
            "notifications",
        ]
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f"NOTIFY {CHANNEL}")  # by hand, no origin: everything wakes
        assert heard.get(timeout=WAIT_S) == "*"
        assert heard.empty()
    finally:
        stop.set()


def test_a_process_leaves_out_what_its_own_workers_wait_for(
    two_processes: tuple[PostgresStorage, PostgresStorage],
) -> None:
    """Its own idle worker takes that work at once (woken in memory): the others would only
    race it for it. What no worker here waits for is announced as before."""
    here, there = two_processes
    heard, stop = listening(there)
    try:
        here.workers_waiting(lambda kind: kind == "notifications")
        with here.transaction() as tx:
            tx.insert_notifications([b"{}"], 1)
            tx.set_event_payload("evt_none", b"{}", 1)  # its deliveries: due now
        assert heard.get(timeout=WAIT_S) == "deliveries"
        with here.transaction() as tx:
            tx.insert_notifications([b"{}"], 2)  # and nothing else: no NOTIFY at all
        here.workers_waiting(None)  # its workers stopped
        with here.transaction() as tx:
            tx.insert_notifications([b"{}"], 3)
        assert heard.get(timeout=WAIT_S) == "notifications"
        assert heard.empty()
    finally:
        stop.set()


def test_a_process_notifies_only_while_another_listens(postgres_url: str) -> None:
    alone = PostgresStorage(postgres_url, pool_size=1)
    assert alone.announcing  # before its listener has looked: whoever may listen is told
    # Hears every NOTIFY but is no convohook process's listener.
    spy = psycopg.connect(postgres_url, autocommit=True)
    spy.execute(f"LISTEN {CHANNEL}")
    heard, stop = listening(alone)
    other: psycopg.Connection[tuple[object, ...]] | None = None
    try:
        wait_until(lambda: not alone.announcing, "silent while alone")
        with alone.transaction() as tx:
            tx.insert_notifications([b"{}"], 1)
        assert list(spy.notifies(timeout=0.5)) == []

        # Another process's listener connects: told again from its next look on.
        other = psycopg.connect(postgres_url, autocommit=True, application_name=LISTENER_NAME)
        wait_until(lambda: alone.announcing, "announcing to the newcomer")
        with alone.transaction() as tx:
            tx.insert_notifications([b"{}"], 2)
        notes = list(spy.notifies(timeout=WAIT_S, stop_after=1))
        assert [n.payload.split(" ")[0] for n in notes] == ["notifications"]

        other.close()
        wait_until(lambda: not alone.announcing, "silent once alone again")
    finally:
        stop.set()
        if other is not None:
            other.close()
        spy.close()
    # Its listener stopped, nobody looks any more: back to telling whoever may listen.
    wait_until(lambda: alone.announcing, "announcing once its listener stopped")
    alone.close()
    assert heard.empty()
