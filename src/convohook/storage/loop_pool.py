"""PostgreSQL connections for the transactions a process runs on its event loop.

Why not psycopg_pool's `AsyncConnectionPool`: it runs tasks of its own (a scheduler, the
reconnecting workers) on the loop that opened it and must be closed on that loop, while a
`PostgresStorage` outlives loops (the CLI opens it before any loop, the tests run a loop per
test on one storage). This pool has no task of its own: a connection is opened when a
transaction needs one and none is idle, a broken one is dropped when it comes back, and at
most `size` are open. During an outage every transaction tries to connect once and fails
with libpq's reason (within `connect_timeout`); nothing waits for a reconnect schedule.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus


class LoopPool:
    def __init__(
        self, url: str, *, size: int, connect_timeout: float, kwargs: dict[str, Any]
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self._url = url
        self._size = size
        self._connect_timeout = connect_timeout
        self._kwargs = kwargs
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._opened = 0  # idle, in use, or being connected
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def acquire(self) -> psycopg.AsyncConnection[Any]:
        """An idle connection, a new one if fewer than `size` are open, or the next one
        released (first come, first served). Raises psycopg.OperationalError if connecting
        fails."""
        while True:
            if self._closed:
                raise psycopg.OperationalError("the connection pool is closed")
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn
                self._opened -= 1
            if self._opened < self._size:
                self._opened += 1
                try:
                    # libpq's connect_timeout is whole seconds, at least 2.
                    timeout = max(2, round(self._connect_timeout))
                    return await psycopg.AsyncConnection.connect(
                        self._url, connect_timeout=timeout, **self._kwargs
                    )
                except BaseException:
                    self._opened -= 1
                    self._wake_one()
                    raise
            turn = asyncio.get_running_loop().create_future()
            self._waiting.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._wake_one()  # woken and gone: pass the turn on
                else:
                    self._waiting.remove(turn)
                raise

    def release(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Back to the pool, if it is usable: idle, outside a transaction. A connection a
        cancelled transaction left mid-statement, or one the server dropped, is closed."""
        usable = (
            not self._closed
            and not conn.closed
            and conn.info.transaction_status == TransactionStatus.IDLE
        )
        if usable:
            self._idle.append(conn)
        else:
            _close_now(conn)
            self._opened -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)
                return

    def close(self) -> None:
        """Close the idle connections now, and each one in use when it is released. Plain,
        not awaited: the loop the connections were used on may be gone already."""
        self._closed = True
        while self._idle:
            _close_now(self._idle.pop())
            self._opened -= 1
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():
                turn.set_result(None)


def _close_now(conn: psycopg.AsyncConnection[Any]) -> None:
    # `AsyncConnection.close()` only needs awaiting for its lock; finishing libpq's
    # connection closes the socket the same way, and makes `conn.closed` true.
    conn.pgconn.finish()
