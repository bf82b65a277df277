"""A worker in another process learns of SQLite commits within milliseconds (no NOTIFY there)."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from convohook.storage.sqlite import SQLiteStorage
from convohook.usecases.orgs import create_org


def test_another_connections_commit_wakes_the_watcher_and_a_read_does_not(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'watched.db'}"
    watched, writer = SQLiteStorage(url), SQLiteStorage(url)
    writer.migrate()
    calls: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=watched.listen, args=(calls.put, stop))
    thread.start()
    try:
        assert calls.get(timeout=5) == "*"  # at once: whatever was committed before it looked

        with writer.transaction(write=False) as tx:
            tx.channel_by_account("17841400000000001")
        time.sleep(0.1)  # 50 looks
        assert calls.empty()  # a read wakes nobody

        with writer.transaction() as tx:
            create_org(tx, "another process", 1)
        assert calls.get(timeout=5) == "*"
        time.sleep(0.1)
        assert calls.empty()  # once per commit
    finally:
        stop.set()
        thread.join(timeout=5)
        watched.close()
        writer.close()
    assert not thread.is_alive()


def test_an_in_memory_database_has_nothing_to_watch() -> None:
    storage = SQLiteStorage("sqlite:///:memory:")
    stop = threading.Event()
    storage.listen(lambda what: None, stop)  # returns at once instead of blocking
    storage.close()
