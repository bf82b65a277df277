"""Runs use cases (plain functions of a `Transaction`) off the event loop, with bounded retries."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Concatenate, ParamSpec, TypeVar

from convohook.storage.base import ConflictError, Storage, Transaction, UnavailableError
from convohook.storage.sealing import PLAIN, Sealer

P = ParamSpec("P")
POOL_SIZE = 8  # PostgreSQL connections per process, one per executor thread
R = TypeVar("R")


class Database:
    """The async face of a `Storage`.

    SQLite gets one thread (one writer is what SQLite allows anyway, and it keeps its single
    connection on one thread); PostgreSQL gets as many threads as its pool has connections.
    """

    def __init__(self, storage: Storage, *, threads: int = 1) -> None:
        self.storage = storage
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="convohook-db")
        self._durable = True

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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self.run_sync(fn, *args, **kwargs)
        )

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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: self._retrying(fn, *args, **kwargs)
        )

    async def read(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        """Run `fn(tx, ...)` in a read-only transaction that sees one snapshot: a delivery and
        its attempts, say, as of the same commit."""
        loop = asyncio.get_running_loop()

        def call() -> R:
            with self.storage.transaction(write=False) as tx:
                return fn(tx, *args, **kwargs)

        return await loop.run_in_executor(self._executor, call)

    def run_sync(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        with self.storage.transaction(durable=self._durable) as tx:
            return fn(tx, *args, **kwargs)

    def _retrying(
        self,
        fn: Callable[Concatenate[Transaction, P], R],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R:
        delay = 0.005
        for _ in range(8):
            try:
                return self.run_sync(fn, *args, **kwargs)
            except (ConflictError, UnavailableError):
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        return self.run_sync(fn, *args, **kwargs)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
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
