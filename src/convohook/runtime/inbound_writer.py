"""Group commit for inbound notifications.

Every notification must be durable before Meta gets its 200, and a durable commit costs an fsync.
Requests that arrive while a commit is in flight are queued and written together in the next one:
one fsync for many notifications under load, no added wait when idle.
"""

from __future__ import annotations

import asyncio
import contextlib

from convohook.storage.database import Database
from convohook.usecases.clock import Clock
from convohook.usecases.processing import store_notifications

MAX_BATCH = 500


class InboundWriter:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def store(self, body: bytes) -> None:
        """Return once `body` is committed; raise what the database raised otherwise."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((body, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self._db.run(store_notifications, [body for body, _ in batch], self._clock())
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
