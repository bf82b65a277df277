"""PostgreSQL's NOTIFY wakes the other processes' workers, not the writer's own: whatever writes
work in a process wakes its loops itself, and the echo made each of them run an empty round."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import psycopg
import pytest

from convohook.storage.postgres import CHANNEL, PostgresStorage

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
