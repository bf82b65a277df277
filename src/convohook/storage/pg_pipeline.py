"""One PostgreSQL transaction's statements sent through libpq's pipeline directly, not through
psycopg's cursors.

Why: on the AMD EPYC machines psycopg's `Cursor.execute` costs about 100 µs of Python per
statement (cursor, query object, preparing cache, generators driving each wait), and an opening
runs ~20 statements in four transactions, each in a thread holding the interpreter lock that
the event loop needs. Measured on one such machine (docs/performance.md), one transaction of
five fetched statements through `PostgresStorage`: 890 to 1,140 µs of CPU with psycopg's
cursors, 450 to 480 through `PGconn`; with 10 ms between transactions, as at 100 DMs/s, 1,570
to 1,760 against 880 to 1,000. Waiting for the server is done here, with the interpreter lock
released (`_next`).

What psycopg's cursors did, this does the same way: parameters and rows adapted by psycopg's
`Transformer` (the same Python types out), a statement prepared after its fifth use (`Prepared`,
psycopg's threshold), errors raised as psycopg's exception classes (`error_from_result`), and
the connection handed back to the pool idle and out of pipeline mode, or closed.
"""

from __future__ import annotations

import select
import threading
import weakref
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result

PREPARE_AFTER = 5  # uses before a statement is prepared (psycopg's prepare_threshold)
PREPARED_MAX = 200  # per connection: past it, a new statement is planned each time
# Silence from the server this long means the connection is gone: every statement is bounded
# by the server itself sooner (statement_timeout 30 s, lock_timeout 10 s).
ANSWER_TIMEOUT_S = 60.0

_Key = tuple[bytes, tuple[int, ...]]
_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


class Prepared:
    """The statements one connection has prepared, by text and parameter types.

    A name is used once only: a statement whose preparation failed (its pipeline was aborted
    by an earlier error) is forgotten and later prepared under a new name, so no name is ever
    prepared twice on a connection."""

    def __init__(self) -> None:
        self._names: dict[_Key, bytes] = {}
        self._uses: dict[_Key, int] = {}
        self._counter = 0

    def name_for(self, key: _Key, allowed: bool | None) -> tuple[bytes | None, bool]:
        """(name, whether to prepare it now) for one more use of `key`; no name: plan it
        this once. `allowed` False: never prepared (see postgres._prepare)."""
        name = self._names.get(key)
        if name is not None:
            return name, False
        if allowed is False or len(self._names) >= PREPARED_MAX:
            return None, False
        uses = self._uses.get(key, 0) + 1
        if uses < PREPARE_AFTER:
            if len(self._uses) >= 10 * PREPARED_MAX:
                self._uses.clear()  # texts seen once or twice: forgetting them costs nothing
            self._uses[key] = uses
            return None, False
        self._uses.pop(key, None)
        self._counter += 1
        name = b"convohook_%d" % self._counter
        self._names[key] = name
        return name, True

    def failed(self, key: _Key, name: bytes) -> None:
        if self._names.get(key) == name:
            del self._names[key]


class PreparedByConnection:
    """`Prepared` for each of a pool's connections, gone with the connection."""

    def __init__(self) -> None:
        self._by_conn: weakref.WeakKeyDictionary[psycopg.Connection[Any], Prepared] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def __call__(self, conn: psycopg.Connection[Any]) -> Prepared:
        prepared = self._by_conn.get(conn)
        if prepared is None:
            with self._lock:
                prepared = self._by_conn.setdefault(conn, Prepared())
        return prepared


class Result:
    """A statement's result, read from the server when first asked for (at the next sync)."""

    __slots__ = ("_pipeline", "pgresult")

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self.pgresult: pq.abc.PGresult | None = None

    def _read(self) -> pq.abc.PGresult:
        if self.pgresult is None:
            if self._pipeline.finished:
                # Its transaction rolled back (or committed without reading it, which the
                # commit's sync never leaves): the connection may be another's by now.
                raise psycopg.InterfaceError(
                    "a result of a transaction that ended without it: read it in the "
                    "transaction, or after a commit (AtCommit)"
                )
            self._pipeline.sync()
            if self.pgresult is None:  # the error that skipped it was raised, and caught
                raise psycopg.errors.InFailedSqlTransaction(
                    "not run: an earlier statement of this transaction failed"
                )
        return self.pgresult

    @property
    def rowcount(self) -> int:
        res = self._read()
        count = res.command_tuples
        return count if count is not None else -1

    def fetchall(self) -> list[Any]:
        res = self._read()
        return self._pipeline.rows(res, 0, res.ntuples)

    def fetchone(self) -> Any:
        res = self._read()
        rows = self._pipeline.rows(res, 0, min(1, res.ntuples))
        return rows[0] if rows else None


class _PrepareSent:
    __slots__ = ("key", "name")

    def __init__(self, key: _Key, name: bytes) -> None:
        self.key = key
        self.name = name


class Pipeline:
    """One transaction on one connection: `begin`, `execute`..., then `commit` or `abandon`."""

    def __init__(self, conn: psycopg.Connection[Any], prepared: Prepared) -> None:
        self._conn = conn
        self._pg = conn.pgconn
        self._tx = Transformer(conn)
        self._prepared = prepared
        # Sent and not yet read, in the order the server answers.
        self._unread: deque[Result | _PrepareSent | None] = deque()
        self._broken = False
        self._poll: select.poll | None = None
        self.finished = False  # committed or abandoned: the connection is no longer ours

    def begin(self, *commands: bytes) -> None:
        self._pg.enter_pipeline_mode()
        for command in commands:
            self._pg.send_query_params(command, None)
            self._unread.append(None)

    def execute(self, sql: bytes, params: Sequence[Any], prepare: bool | None) -> Result:
        pg = self._pg
        if params:
            dumped = self._tx.dump_sequence(params, [PyFormat.AUTO] * len(params))
            types = self._tx.types or ()
            formats = self._tx.formats
        else:
            dumped, types, formats = None, (), None
        key = (sql, types)
        name, first = self._prepared.name_for(key, prepare)
        if name is None:
            pg.send_query_params(sql, dumped, param_types=types, param_formats=formats)
        else:
            if first:
                pg.send_prepare(name, sql, param_types=types)
                self._unread.append(_PrepareSent(key, name))
            pg.send_query_prepared(name, dumped, param_formats=formats)
        result = Result(self)
        self._unread.append(result)
        return result

    def rows(self, res: pq.abc.PGresult, start: int, end: int) -> list[Any]:
        self._tx.set_pgresult(res)
        return self._tx.load_rows(start, end, tuple)

    def sync(self) -> None:
        """Mark a sync point and read every answer up to it. Raises the first error among
        them (the statements after it were not run: the server skips to the sync)."""
        pg = self._pg
        self._broken = True  # until every answer up to the sync is read
        pg.pipeline_sync()
        self._flush()
        error: psycopg.Error | None = None
        while self._unread:
            sent = self._unread.popleft()
            res = self._next()
            if res is None or self._next() is not None:
                raise self._lost()
            ok = res.status in _OK
            if isinstance(sent, Result):
                if ok:
                    sent.pgresult = res
            elif isinstance(sent, _PrepareSent) and not ok:
                self._prepared.failed(sent.key, sent.name)
            if res.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = error_from_result(res, encoding=self._conn.info.encoding)
        res = self._next()
        if res is None or res.status != pq.ExecStatus.PIPELINE_SYNC:
            raise self._lost()
        self._broken = False
        if error is not None:
            raise error

    def commit(self) -> None:
        """Commit, reading with it every answer not read yet: results still to be fetched
        (`Result`) can be, after it."""
        self._pg.send_query_params(b"COMMIT", None)
        self._unread.append(None)
        self.sync()
        self._pg.exit_pipeline_mode()
        self.finished = True

    def abandon(self) -> None:
        """After a failure anywhere: roll back and leave pipeline mode, or, where the
        connection is in no state to tell, close it (the pool then replaces it)."""
        pg = self._pg
        self.finished = True
        try:
            if self._broken or pg.status != pq.ConnStatus.OK:
                raise self._lost()
            if pg.pipeline_status != pq.PipelineStatus.OFF:
                if self._unread:
                    self._sync_ignoring_errors()
                pg.exit_pipeline_mode()
            if pg.transaction_status != pq.TransactionStatus.IDLE:
                pg.send_query_params(b"ROLLBACK", None)
                self._flush()
                while self._next() is not None:
                    pass
        except psycopg.Error:
            self._conn.close()

    def _sync_ignoring_errors(self) -> None:
        try:
            self.sync()
        except psycopg.Error:
            if self._broken:
                raise

    def _flush(self) -> None:
        while self._pg.flush() == 1:  # the socket's buffer is full: wait until it drains
            self._wait(select.POLLOUT)

    def _next(self) -> pq.abc.PGresult | None:
        """The next result, waiting for it with the interpreter lock released (libpq's own
        wait in `get_result` keeps it: the whole process would stop while one thread waits
        for a row lock)."""
        pg = self._pg
        while pg.is_busy():
            self._wait(select.POLLIN)
            pg.consume_input()
        return pg.get_result()

    def _wait(self, event: int) -> None:
        if self._poll is None:
            self._poll = select.poll()
        self._poll.register(self._pg.socket, event)
        ready = self._poll.poll(ANSWER_TIMEOUT_S * 1000)
        if not ready:
            self._broken = True
            raise psycopg.OperationalError(
                f"no answer from PostgreSQL in {ANSWER_TIMEOUT_S:g} s: connection dropped"
            )

    def _lost(self) -> psycopg.OperationalError:
        self._broken = True
        message = self._pg.get_error_message() or "the server's answers were not as expected"
        return psycopg.OperationalError(f"connection lost: {message}")
