"""Group commit for the log: many commits made durable by one fsync, off the event loop.

A caller commits without waiting for the disk, then awaits `synced()`: it returns once an fsync
that started after that commit has finished. While one fsync runs, every caller that arrives
waits for the next one, and that one fsync serves them all: under load, one fsync per round
however many commits were made meanwhile; idle, no added wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor


class LogSync:
    def __init__(self, sync: Callable[[], None]) -> None:
        self._sync = sync
        # Its own thread: an fsync must never queue behind a transaction waiting for a lock.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convohook-fsync")
        self._running: asyncio.Future[None] | None = None
        self._next: asyncio.Future[None] | None = None
        self.syncs = 0  # fsyncs started, for tests and the benchmark

    async def synced(self) -> None:
        """Return once everything committed before this call is on disk; raise what the
        sync raised otherwise (the commit may then be lost to a power cut: not acknowledged)."""
        if self._running is None:
            waited = self._start()
        else:
            # The fsync in flight may have started before our commit: wait for the next one.
            if self._next is None:
                self._next = asyncio.get_running_loop().create_future()
                self._next.add_done_callback(_retrieve)
            waited = self._next
        # Shielded: a caller that gives up (a client gone) must not cancel the others' fsync.
        await asyncio.shield(waited)

    def _start(self) -> asyncio.Future[None]:
        self.syncs += 1
        running = asyncio.get_running_loop().run_in_executor(self._executor, self._sync)
        running.add_done_callback(_retrieve)
        running.add_done_callback(self._finished)
        self._running = running
        return running

    def _finished(self, done: asyncio.Future[None]) -> None:
        waiting, self._next = self._next, None
        if waiting is None:
            self._running = None
            return
        self._start().add_done_callback(lambda sync: _copy(sync, waiting))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def _copy(source: asyncio.Future[None], target: asyncio.Future[None]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(None)


def _retrieve(future: asyncio.Future[None]) -> None:
    # Mark the outcome seen: when every waiter has given up, asyncio would otherwise log it.
    if not future.cancelled():
        future.exception()
