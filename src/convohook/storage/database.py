"""Runs use cases (plain functions of a `Transaction`) off the event loop's way, with bounded
retries.

Two ways, by backend. PostgreSQL: each transaction in a thread of a pool, one connection each.
SQLite (a `LoopStorage`): each transaction on the event loop itself, committing without waiting
for the disk, and the callers that need durability then wait, together, for one fsync of the
log in a thread (`LogSync`). Measured (docs/performance.md): with SQLite's work in one thread,
every statement handed the interpreter lock to that thread and back, and the database thread
spent more of its time waiting for the lock than working; on the loop, 15% more openings/s and
half the latency at 300 DMs/s. Nothing on the loop waits: a write lock held by another process
(a `convohook worker`, a CLI command) makes the loop's attempt fail at once, and the
transaction goes to the thread, which waits for the lock as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from convohook.storage.base import LoopStorage, Storage, Transaction
from convohook.storage.errors import BusyError, ConflictError, UnavailableError
from convohook.storage.log_sync import LogSync
from convohook.storage.sealing import PLAIN, Sealer

P = ParamSpec("P")
POOL_SIZE = 8  # PostgreSQL connections per process, one per executor thread
R = TypeVar("R")


@dataclass
class _OnLoop:
    """What the loop path shares between a `Database` and its `relaxed` view."""

    storage: LoopStorage
    log_sync: LogSync
    # Transactions handed to the thread and not finished: while there are any, the connection
    # is the thread's, and later transactions queue behind them there, in order.
    in_thread: int = 0


class Database:
    """The async face of a `Storage`.

    SQLite has one connection (one writer is what SQLite allows anyway), used on the loop and,
    when it must wait for a lock, in one thread; PostgreSQL gets as many threads as its pool
    has connections.
    """

    def __init__(self, storage: Storage, *, threads: int = 1) -> None:
        self.storage = storage
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convohook-db")
        self._durable = True
        self._on_loop = None
        if isinstance(storage, LoopStorage):
            self._on_loop = _OnLoop(storage, LogSync(storage.sync_log))
            storage.start_checkpointer()

    @property
    def relaxed(self) -> Database:
        """The same database, committing without waiting for the disk (see
        `Storage.transaction`). For the workers' internal steps (processing, profiles,
        recording attempts), never for what is acknowledged or sent: the inbound write, the
        dispatcher's claim and every API call stay durable."""
        view = copy.copy(self)
        view._durable = False
        return view

    @property
    def dialect(self) -> str:
        return self.storage.dialect

    async def run(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run `fn(tx, ...)` in one write transaction. A ConflictError is the caller's to map."""
        on_loop = self._on_loop
        if on_loop is None:
            return await self._in_executor(lambda: self.run_sync(fn, *args, **kwargs))
        attempt = _attempt(on_loop.storage, lambda tx: fn(tx, *args, **kwargs), write=True)
        result = await self._on_loop_or_thread(on_loop, attempt, retry=False)
        if self._durable:
            await on_loop.log_sync.synced()
        return result

    async def run_retrying(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Like `run`, but a lost race (ConflictError) or a busy database is tried again.

        For work whose conflicts are concurrency, not user error: two workers opening the same
        customer's conversation, say. The retry re-reads the state and decides again.
        """
        on_loop = self._on_loop
        if on_loop is None:
            return await self._in_executor(
                lambda: self._retrying(lambda: self.run_sync(fn, *args, **kwargs))
            )
        attempt = _attempt(on_loop.storage, lambda tx: fn(tx, *args, **kwargs), write=True)
        result = await self._on_loop_or_thread(on_loop, attempt, retry=True)
        if self._durable:
            await on_loop.log_sync.synced()
        return result

    async def read(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run `fn(tx, ...)` in a read-only transaction that sees one snapshot: a delivery and
        its attempts, say, as of the same commit."""
        on_loop = self._on_loop
        if on_loop is None:

            def call() -> R:
                with self.storage.transaction(write=False) as tx:
                    return fn(tx, *args, **kwargs)

            return await self._in_executor(call)
        attempt = _attempt(on_loop.storage, lambda tx: fn(tx, *args, **kwargs), write=False)
        return await self._on_loop_or_thread(on_loop, attempt, retry=False)

    def run_sync(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Outside an event loop (the CLI): the transaction and its commit, durably."""
        with self.storage.transaction(durable=self._durable) as tx:
            return fn(tx, *args, **kwargs)

    async def _on_loop_or_thread(
        self, on_loop: _OnLoop, attempt: Callable[[bool], R], *, retry: bool
    ) -> R:
        """On the loop, not waiting for locks; in the thread, waiting, if the loop's attempt
        found the lock taken (or lost a race, for `retry`) or the thread has the connection."""
        if retry:

            def in_thread() -> R:
                return self._retrying(lambda: attempt(True))

            handed_over: tuple[type[Exception], ...] = (BusyError, ConflictError, UnavailableError)
        else:

            def in_thread() -> R:
                return attempt(True)

            handed_over = (BusyError,)
        if on_loop.in_thread == 0:
            try:
                return attempt(False)
            except handed_over:
                pass
        return await self._in_thread(on_loop, in_thread)

    async def _in_executor(self, call: Callable[[], R]) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _in_thread(self, on_loop: _OnLoop, call: Callable[[], R]) -> R:
        loop = asyncio.get_running_loop()
        on_loop.in_thread += 1
        job = self._executor.submit(call)

        def finished(_: object) -> None:
            on_loop.in_thread -= 1

        # Counted down when the thread is done with the connection, not when our caller stops
        # waiting: a cancelled request must not hand the loop a connection still in use.
        def from_thread(done: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to tell
                loop.call_soon_threadsafe(finished, done)

        job.add_done_callback(from_thread)
        return await asyncio.wrap_future(job)

    @staticmethod
    def _retrying(call: Callable[[], R]) -> R:
        delay = 0.005
        for _ in range(8):
            try:
                return call()
            except (ConflictError, UnavailableError):
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        return call()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._on_loop is not None:
            self._on_loop.log_sync.close()
        self.storage.close()


def open_storage(database_url: str, sealer: Sealer = PLAIN) -> Storage:
    """`sealer`: how secrets are kept at rest (`Settings.sealer()`: encrypted with the
    configured key, or as given without one)."""
    if database_url.startswith("sqlite:"):
        from convohook.storage.sqlite import SQLiteStorage

        return SQLiteStorage(database_url, sealer=sealer)
    if database_url.startswith(("postgresql:", "postgres:")):
        from convohook.storage.postgres import PostgresStorage

        return PostgresStorage(database_url, pool_size=POOL_SIZE, sealer=sealer)
    raise ValueError(
        f"unsupported CONVOHOOK_DATABASE_URL {database_url!r}: use sqlite:///path.db "
        "(embedded) or postgresql://user@host/dbname (scale-out)"
    )


def open_database(database_url: str, sealer: Sealer = PLAIN) -> Database:
    storage = open_storage(database_url, sealer)
    return Database(storage, threads=1 if storage.dialect == "sqlite" else POOL_SIZE)


def _attempt(
    storage: LoopStorage, body: Callable[[Transaction], R], *, write: bool
) -> Callable[[bool], R]:
    """One try of `body` in a transaction; `wait`: whether to wait for a lock held elsewhere.
    Committed without waiting for the disk: the caller waits for the log's sync if it must."""

    def attempt(wait: bool) -> R:
        with storage.transaction(write=write, durable=False, wait=wait) as tx:
            return body(tx)

    return attempt
