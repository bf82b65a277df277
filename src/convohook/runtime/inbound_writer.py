"""Group commit for inbound notifications, and processing in the same commit where it can.

Every notification must be durable before Meta gets its 200, and a durable commit costs an fsync.
Requests that arrive while a commit is in flight are queued and written together in the next one:
one fsync for many notifications under load, no added wait when idle.

With `process_with` (SQLite, workers in this process), the same transaction also processes
them (`store_and_process`): one commit per batch instead of two, which on SQLite is also one
write of the touched pages to the WAL instead of two. The processor then only sees what
processing at receipt left (a failure, another process's inserts).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.clock import Clock
from convohook.usecases.processing import ProcessingPolicy, ProcessReport, store_and_process

log = logging.getLogger(__name__)

MAX_BATCH = 500


def _insert_all(tx: Transaction, bodies: list[bytes], now_ms: int) -> None:
    tx.insert_notifications(bodies, now_ms)


@dataclass(frozen=True, slots=True)
class InlineProcessing:
    policy: ProcessingPolicy
    absorb: Callable[[ProcessReport], None]  # the processor's follow-up: metrics, hand-offs


class InboundWriter:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._queue: asyncio.Queue[tuple[bytes, asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._inline: InlineProcessing | None = None

    def process_with(self, inline: InlineProcessing | None) -> None:
        """Process at receipt from now on (None: store only, the processor does the rest)."""
        self._inline = inline

    async def store(self, body: bytes) -> bool:
        """Return once `body` is committed: True if it was processed in the same transaction,
        False if it waits for the processor. Raise what the database raised otherwise."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        await self._queue.put((body, done))
        return await done

    async def _write(self, bodies: list[bytes]) -> ProcessReport | None:
        inline = self._inline
        if inline is None:
            await self._db.run(_insert_all, bodies, self._clock())
            return None
        return await self._db.run(
            store_and_process, bodies, now_ms=self._clock(), policy=inline.policy
        )

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            inline = self._inline
            try:
                report = await self._write([body for body, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            # Fewer found than asked for: nothing is left pending, ours included.
            processed = report is not None and report.notifications <= len(batch)
            for _, done in batch:
                if not done.done():
                    done.set_result(processed)
            if report is not None and inline is not None:
                try:
                    inline.absorb(report)
                except Exception:  # committed already: a follow-up failing must not stop us
                    log.exception("inbound: following up on processed notifications failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
