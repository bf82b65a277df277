"""PostgreSQL backend (scale-out): psycopg 3 with a connection pool, row locks, LISTEN/NOTIFY.

Many `serve --no-worker` and `worker` processes share one database. Work is claimed with
`FOR UPDATE SKIP LOCKED` (deliveries additionally under a lease, so a killed worker's claims are
taken over), the one-open-conversation rule is a unique index, and a lost race is retried by
`Database.run_retrying`. Workers are woken by NOTIFY, sent in the same transaction as the work.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from convohook.domain.model import BotRun, DueDelivery, OutboundMessage
from convohook.storage import migrations
from convohook.storage.at_commit import AtCommit
from convohook.storage.base import MigrationProgress
from convohook.storage.config_cache import ConfigCache
from convohook.storage.errors import CannotConnect, ConflictError, UnavailableError
from convohook.storage.held_inserts import HeldInserts
from convohook.storage.pg_pipeline import Pipeline, PreparedByConnection
from convohook.storage.redact import redacted_url
from convohook.storage.sealing import PLAIN, Sealer
from convohook.storage.sql import FIFO_READY, Cursor, SQLTransaction
from convohook.storage.sql.base import PREVIOUS_SECRET
from convohook.storage.sql.deliveries import (
    NEXT_DUE_AT,
    UPDATE_DELIVERY,
    due_row,
    due_select,
    next_due_from,
)
from convohook.storage.sql.webhooks import WEBHOOK_HEALED

log = logging.getLogger(__name__)

CHANNEL = "convohook"
# The application name of every process's LISTEN connection: how a process sees whether
# another one listens (`PostgresStorage.listen`).
LISTENER_NAME = "convohook-listener"
LISTENERS_CHECK_S = 1.0
MIGRATION_LOCK = 7_201_004  # pg_advisory_xact_lock key: one migrator at a time
# psycopg_pool retries a lost connection after 1, 2, 4, 8... s until this runs out; the next
# transaction then starts a fresh round. Its default (5 minutes) let the wait grow to minutes:
# after a 20 s outage we measured 24 s, under load over a minute, before the first connection.
# Giving up after 5 s keeps the gap between attempts under 4 s while transactions keep coming.
RECONNECT_GIVE_UP_S = 5.0


_IN_LIST = re.compile(r"\bIN \(\?\s*,", re.IGNORECASE)


_NOTIFY = b"SELECT pg_notify($1, $2)"
# Other processes' listeners on this database, and whether this one's own is seen (it is not
# when something between us and the server renames connections: then we cannot tell).
_LISTENERS = (
    "SELECT count(*) FILTER (WHERE pid <> pg_backend_pid()), "
    "coalesce(bool_or(pid = pg_backend_pid()), false) "
    "FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s"
)
# A success and the end of its webhook's failure streak in one statement: that update found
# no streak to end on nearly every success (2,007 calls, no row changed, in a run at 100
# DMs/s), and a statement costs a backend ~50 µs whatever it does. Reading the streak at the
# claim instead would miss a failure recorded by another process after it.
_DELIVERY_HEALING = f"WITH outcome AS ({UPDATE_DELIVERY}) {WEBHOOK_HEALED}"
_READ_ONLY = b"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"  # one snapshot for all reads
# A later synchronous commit (any session's) flushes the WAL past this one.
_RELAXED = b"SET LOCAL synchronous_commit = off"


@functools.lru_cache(maxsize=1024)
def _pg(sql: str) -> bytes:
    """The shared SQL's `?` placeholders as PostgreSQL's own `$1, $2, ...` (it contains no
    literal `?`). Sent through a raw cursor, the text goes to the server as it is: psycopg's
    `%s` queries are parsed in Python on every call with more than 50 parameters (a
    multi-row INSERT, an IN list), and that parsing was a tenth of `serve`'s time."""
    parts = sql.split("?")
    text = "".join(f"{part}${i}" for i, part in enumerate(parts[:-1], 1)) + parts[-1]
    return text.encode()


@functools.lru_cache(maxsize=1024)
def _prepare(sql: str) -> bool | None:
    """Whether psycopg may prepare the statement (None: after its fifth use, as it does).

    Not a lookup by an IN list of several values: its text changes with the number of values,
    and the plan PostgreSQL keeps for a prepared statement is the one it chose when the table
    was small. A table that grew fast since (a new install's first burst) was then scanned
    by its first index column alone (`channel_id`: every row of the channel) on every call,
    1 to 80 ms instead of 0.05; planned each time, the lookup uses the whole key."""
    return False if _IN_LIST.search(sql) else None


# Due = pending and scheduled, or sending under a lease that expired (its worker died); at most
# `limit` of them marked as sent under a new lease, and read with what sending takes
# (`due_select` on the claim's own rows, which carry the new lease) in the same statement.
_CLAIM = (
    "WITH due AS ("
    " SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id"
    " JOIN webhooks w ON w.id = d.webhook_id"
    " WHERE d.status = 'pending' AND d.next_attempt_at_ms <= ?"
    " AND e.payload IS NOT NULL AND w.enabled = TRUE"
    + FIFO_READY
    + " ORDER BY d.next_attempt_at_ms LIMIT ? FOR UPDATE OF d SKIP LOCKED),"
    " expired AS ("
    " SELECT id FROM deliveries WHERE status = 'sending' AND lease_until_ms <= ?"
    " LIMIT ? FOR UPDATE SKIP LOCKED),"
    " claimed AS ("
    " UPDATE deliveries SET status = 'sending', lease_until_ms = ? WHERE id IN ("
    " SELECT id FROM (SELECT id FROM due UNION ALL SELECT id FROM expired) AS both_kinds"
    " LIMIT ?) RETURNING *) "
    # The webhooks' previous secrets still valid (a rotation) come in the rows themselves,
    # newest first, where SQLite's claim reads only whether there are any and then reads them:
    # nothing is left to read after the claim, which can then go with the commit (`AtCommit`).
    + due_select(
        "ARRAY(SELECT s.secret FROM webhook_secrets s"
        " WHERE s.webhook_id = w.id AND s.expires_at_ms > ? ORDER BY s.created_at_ms DESC)"
    ).format(deliveries="claimed")
    + " ORDER BY d.id"
)


def normalize_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


def _storable(params: Sequence[Any]) -> Sequence[Any]:
    """PostgreSQL text cannot hold NUL, which JSON (a DM, a capture) can carry as `\\u0000`:
    stored as U+FFFD instead of failing the whole transaction (and with it an opening)."""
    if not any(type(p) is str and "\x00" in p for p in params):
        return params
    return [p.replace("\x00", "\ufffd") if type(p) is str else p for p in params]


@dataclass
class Announcer:
    """This process as the others hear of it through NOTIFY."""

    # Named in every NOTIFY, so that `PostgresStorage.listen` passes over the process's own.
    origin: str = field(default_factory=lambda: secrets.token_hex(8))
    # Whether another process may be listening. True unless this process's own listener has
    # just looked and seen none: then a NOTIFY would wake nobody but this process's listener,
    # which passes over it (measured: 5 to 10% of the database's CPU per opening, and a thread
    # taking the interpreter lock, for nothing). A NOTIFY missed by a process that started
    # listening less than `LISTENERS_CHECK_S` ago costs nothing: whatever a process writes
    # wakes its own loops, and the newcomer looks for work as it starts listening.
    heard: bool = True
    # Whether this process's own worker takes a kind of work at once (`Storage.workers_waiting`:
    # it waits for some, or is in a round with no more of it queued): the writer wakes it in
    # memory, so that kind is left out of the NOTIFY, which would only have every other
    # process's worker wake for it too and race for it (the herd: two serves at 300 DMs/s had
    # a DM→webhook p50 of 46 to 47 ms with every NOTIFY, 38 without these, 33 with none). A
    # kind is still announced while its worker here has more of it queued: load to share.
    waiting: Callable[[str], bool] | None = None


class PostgresTransaction(SQLTransaction):
    """Statements go through libpq's pipeline (storage/pg_pipeline.py): they are sent without
    waiting for each answer, and the round trip is paid only where a result is read (a fetch,
    a row count) or at commit. An opening's ~20 statements take a handful of round trips
    instead of ~20."""

    FOR_UPDATE = " FOR UPDATE"
    FOR_NO_KEY_UPDATE = " FOR NO KEY UPDATE"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    # The same as `payload IS NULL`, in words the planner cannot match to the partial indexes
    # of events awaiting a profile (`payload IS NOT DISTINCT FROM NULL` is folded back into
    # `payload IS NULL`). With `payload IS NULL`, the generic plan of `WHERE id = $2 AND
    # payload IS NULL`, made once per connection while that index was small, scanned all of
    # `events_contact_awaiting` instead of taking the primary key, and read every event
    # awaiting a profile to find one: 3,000 rows and 3,500 buffers per update in a backlog
    # (auto_explain), where the primary key takes 3.
    PAYLOAD_UNSET = "octet_length(payload) IS NULL"

    def __init__(
        self, pipeline: Pipeline, sealer: Sealer, announcer: Announcer, config: ConfigCache
    ) -> None:
        super().__init__(sealer, config)
        self._announcer = announcer
        self._pipeline = pipeline
        self._wake: set[str] = set()
        self._held = HeldInserts()

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        self.send_held()
        return self._pipeline.execute(_pg(sql), _storable(params), _prepare(sql))

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.send_held()
        statement, prepare = _pg(sql), _prepare(sql)
        for row in rows:
            self._pipeline.execute(statement, _storable(row), prepare)

    def _insert(self, sql: str, params: Sequence[Any]) -> None:
        if not self._held.hold(sql, params):
            self._x(sql, params)

    def _insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            self._insert(sql, row)

    def send_held(self) -> None:
        """The inserts held back (storage/held_inserts.py), as multi-row statements."""
        if self._held:
            for sql, params in self._held.take():
                self._pipeline.execute(_pg(sql), _storable(params), _prepare(sql))

    def _notify(self, what: str) -> None:
        self._wake.add(what)

    def send_notifies(self) -> None:
        """One NOTIFY per transaction, sent last: PostgreSQL delivers it at commit, and only
        then, so a woken worker always finds the work. It names the kinds of work and the
        process that wrote it (`deliveries,profiles 3f2a…`: see `PostgresStorage.listen`),
        unless no other process listens (`Announcer.heard`), and not the kinds this process's
        own workers wait for (`Announcer.waiting`). What is held goes first."""
        self.send_held()
        announcer = self._announcer
        if self._wake and announcer.heard:
            waiting = announcer.waiting
            kinds = sorted(k for k in self._wake if waiting is None or not waiting(k))
            if kinds:
                payload = f"{','.join(kinds)} {announcer.origin}"
                self._pipeline.execute(_NOTIFY, (CHANNEL, payload), None)
        self._wake.clear()

    def claim_due_deliveries(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[DueDelivery]:
        return self._claimed(self._claim(now_ms, lease_until_ms, limit).fetchall())

    def claim_and_next_due(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> AtCommit[tuple[list[DueDelivery], int | None]]:
        """The claim and the next due time sent with the commit, one round trip for the three
        (the claim was the round trip before the commit's): the second is used only when the
        claim drained what was due (at a trickle of openings, most claims), and costs the
        server a cheap index lookup otherwise."""
        claim = self._claim(now_ms, lease_until_ms, limit)
        next_due = self._x(NEXT_DUE_AT)

        def read() -> tuple[list[DueDelivery], int | None]:
            due = self._claimed(claim.fetchall())
            return due, (next_due_from(next_due) if len(due) < limit else None)

        return AtCommit(read)

    def _claimed(self, rows: Sequence[Sequence[Any]]) -> list[DueDelivery]:
        sealer = self._sealer
        return [
            due_row(r, tuple(sealer.open(PREVIOUS_SECRET, str(s)) for s in r[24]), sealer)
            for r in rows
        ]

    def _claim(self, now_ms: int, lease_until_ms: int, limit: int) -> Cursor:
        """Claim and read in one statement (`_CLAIM`)."""
        return self._x(_CLAIM, (now_ms, limit, now_ms, limit, lease_until_ms, limit, now_ms))

    def insert_notifications(self, bodies: Sequence[bytes], now_ms: int) -> None:
        super().insert_notifications(bodies, now_ms)
        self._notify("notifications")

    def insert_notification(self, body: bytes, now_ms: int) -> int:
        notification_id = super().insert_notification(body, now_ms)
        self._notify("notifications")
        return notification_id

    def insert_event(self, **kwargs: Any) -> None:
        super().insert_event(**kwargs)
        if kwargs.get("payload") is not None:
            self._notify("deliveries")
        elif kwargs.get("profile_claimed_until_ms", 0) <= kwargs["now_ms"]:
            self._notify("profiles")  # claimed by its writer otherwise: nobody else to wake

    def set_event_payload(self, event_id: str, payload: bytes, now_ms: int) -> None:
        super().set_event_payload(event_id, payload, now_ms)
        self._notify("deliveries")

    def recover_deliveries(self, webhook_id: str, since_ms: int, now_ms: int) -> int:
        self._notify("deliveries")
        return super().recover_deliveries(webhook_id, since_ms, now_ms)

    def reschedule_delivery(self, delivery_id: str, now_ms: int) -> None:
        super().reschedule_delivery(delivery_id, now_ms)
        self._notify("deliveries")

    def update_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        attempt_count: int,
        next_attempt_at_ms: int | None,
        last_status_code: int | None,
        last_error: str | None,
        now_ms: int,
        heals_webhook: str | None = None,
    ) -> None:
        outcome = (status, attempt_count, next_attempt_at_ms, last_status_code, last_error, now_ms)
        if heals_webhook is None:
            self._x(UPDATE_DELIVERY, (*outcome, delivery_id))
        else:
            self._x(_DELIVERY_HEALING, (*outcome, delivery_id, heals_webhook))

    def insert_bot_runs(self, runs: Sequence[BotRun]) -> None:
        super().insert_bot_runs(runs)
        if runs:
            self._notify("bots")

    def insert_outbound(self, message: OutboundMessage) -> bool:
        inserted = super().insert_outbound(message)
        if inserted and message.status == "queued":
            self._notify("replies")
        return inserted

    def requeue_reply(self, org_id: str, message_id: str, now_ms: int) -> bool:
        requeued = super().requeue_reply(org_id, message_id, now_ms)
        if requeued:
            self._notify("replies")
        return requeued


class PostgresStorage:
    dialect = "postgresql"
    listen_polls = False

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 8,
        connect_timeout: float = 10.0,
        sealer: Sealer = PLAIN,
    ) -> None:
        self._sealer = sealer
        self._prepared = PreparedByConnection()
        self._config = ConfigCache()
        self._announcer = Announcer()
        self.url = normalize_url(url)
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=pool_size,
            reconnect_timeout=RECONNECT_GIVE_UP_S,
            kwargs={
                "connect_timeout": int(connect_timeout),
                "application_name": "convohook",
                # Every call has a bound: a stuck statement fails (and is retried) after 30 s.
                "options": "-c statement_timeout=30000 -c lock_timeout=10000",
            },
            open=False,
        )
        # One direct connection first: when the database cannot be reached, libpq says why at
        # once (refused, no such database, authentication failed), where the pool would retry
        # for `connect_timeout` and then report only its own timeout.
        cause = _connect_error(self.url, connect_timeout)
        if cause is not None:
            raise CannotConnect(cannot_connect_message(self.url, cause))
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.OperationalError as exc:  # PoolTimeout: lost the database meanwhile?
            cause = _connect_error(self.url, connect_timeout) or (
                f"no connection within {connect_timeout:g} s ({exc})"
            )
            raise CannotConnect(cannot_connect_message(self.url, cause)) from exc

    @property
    def announcing(self) -> bool:
        """Whether this process's transactions send NOTIFYs (see `Announcer.heard`)."""
        return self._announcer.heard

    @contextmanager
    def transaction(
        self, *, write: bool = True, durable: bool = True
    ) -> Iterator[PostgresTransaction]:
        try:
            with self._pool.connection() as conn:
                pipeline = Pipeline(conn, self._prepared(conn))
                try:
                    if not write:
                        pipeline.begin(_READ_ONLY)
                    elif durable:
                        pipeline.begin(b"BEGIN")
                    else:
                        pipeline.begin(b"BEGIN", _RELAXED)
                    tx = PostgresTransaction(pipeline, self._sealer, self._announcer, self._config)
                    yield tx
                    tx.send_notifies()
                    pipeline.commit()
                except BaseException:
                    pipeline.abandon()
                    raise
        except (psycopg.errors.IntegrityError, psycopg.errors.SerializationFailure) as exc:
            raise ConflictError(str(exc)) from exc
        except psycopg.errors.DeadlockDetected as exc:
            raise ConflictError(str(exc)) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise UnavailableError(f"PostgreSQL is not available: {exc}") from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            # A failover to a standby, or the database set read-only: an outage to wait out
            # (Meta gets a 503 and posts again), not a fault in the work.
            raise UnavailableError(f"PostgreSQL takes no writes now: {exc}") from exc

    def _applied(self, conn: psycopg.Connection[Any]) -> set[int]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)"
        )
        return {int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations")}

    def pending_migrations(self) -> list[str]:
        with self._pool.connection() as conn, conn.transaction():
            applied = self._applied(conn)
        return [m.name for m in migrations.load("postgresql") if m.version not in applied]

    def migrate(self, progress: MigrationProgress | None = None) -> list[str]:
        done = []
        with self._pool.connection() as conn, conn.transaction():
            # A migration of a large table may take longer than the bound every other statement
            # has; it runs once, at start, under the advisory lock.
            conn.execute("SET LOCAL statement_timeout = 0")
            # Several processes may start at once: the advisory lock makes them take turns.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            applied = self._applied(conn)
            for migration in migrations.load("postgresql"):
                if migration.version in applied:
                    continue
                started = time.monotonic()
                if progress is not None:
                    progress(migration.name, None)
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at_ms) "
                    "VALUES (%s, %s, %s)",
                    (migration.version, migration.name, int(time.time() * 1000)),
                )
                done.append(migration.name)
                if progress is not None:
                    progress(migration.name, time.monotonic() - started)
        return done

    def listen(self, on_change: Callable[[str], None], stop: threading.Event) -> None:
        """Block, calling `on_change(what)` for every NOTIFY of another process, until `stop`
        is set. Reconnects after a lost connection; meanwhile the workers' idle poll covers.

        This process's own NOTIFYs are passed over: whatever writes work here wakes the
        loops here itself, at once (as on SQLite, where nothing else would), and the echo
        from the database made every worker run an empty round after each of its own
        commits. A NOTIFY without an origin (a `NOTIFY convohook` by hand) wakes
        everything.

        Every `LISTENERS_CHECK_S` it also looks whether another process listens (its
        listener's application name among the database's connections), and this process
        sends NOTIFYs only while one does (`Announcer`)."""
        announcer = self._announcer
        while not stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, connect_timeout=10, application_name=LISTENER_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    on_change("*")  # anything sent while we were not listening
                    while not stop.is_set():
                        announcer.heard = _others_listen(conn)
                        for note in conn.notifies(timeout=LISTENERS_CHECK_S):
                            kinds, _, origin = note.payload.partition(" ")
                            if origin != announcer.origin:
                                for what in kinds.split(",") if kinds else ["*"]:
                                    on_change(what)
            except psycopg.OperationalError as exc:
                if not stop.is_set():
                    log.warning("LISTEN connection lost, reconnecting in 1 s: %s", exc)
                    stop.wait(1.0)
            finally:
                announcer.heard = True  # nobody looking: tell whoever may listen

    def workers_waiting(self, waiting: Callable[[str], bool] | None) -> None:
        self._announcer.waiting = waiting

    def close(self) -> None:
        self._pool.close()


def _others_listen(conn: psycopg.Connection[Any]) -> bool:
    """Whether a listener of another process is connected to this database; True too when
    this connection's own name is not seen (a proxy renaming connections, say)."""
    row = conn.execute(_LISTENERS, (LISTENER_NAME,)).fetchone()
    others, seen_self = row if row is not None else (0, False)
    return bool(others) or not seen_self


def _connect_error(url: str, timeout: float) -> str | None:
    """Why a connection to `url` fails, in libpq's words; None if it succeeds."""
    try:
        # libpq's connect_timeout is whole seconds, at least 2.
        psycopg.connect(url, connect_timeout=max(2, round(timeout))).close()
    except psycopg.Error as exc:
        return str(exc)
    return None


def cannot_connect_message(url: str, cause: str) -> str:
    """One line: why the database at `url` cannot be reached and what to do, with any
    password redacted. `cause` is libpq's error text, e.g. `connection failed: connection to
    server at "127.0.0.1", port 5432 failed: FATAL:  database "convohook" does not exist`."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.Error:
        params = {}
    host, port, user = (str(params.get(k) or "") for k in ("host", "port", "user"))
    port = port or "5432"
    where = (
        f"{host}:{port}"
        if host and not host.startswith("/")
        else f"the socket in {host or 'the default directory'} (port {port})"
    )
    shown = redacted_url(url)
    # libpq's last words are the cause: `... port 5432 failed: FATAL:  <cause>`.
    first = cause.strip().splitlines()[0] if cause.strip() else "unknown error"
    reason = first.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    said = reason.lower()
    missing = re.fullmatch(r'database "(.+)" does not exist', reason)
    if missing:
        name = missing.group(1)
        options = "".join(
            f" {flag} {value}"
            for flag, value in (
                ("-h", params.get("host")),
                ("-p", params.get("port")),
                ("-U", user),
            )
            if value
        )
        return (
            f"PostgreSQL at {where} has no database {name!r}: create it with "
            f"`createdb{options} {name}`, or fix the database name in CONVOHOOK_DATABASE_URL "
            f"({shown})"
        )
    if "pg_hba.conf" in said:
        return (
            f"PostgreSQL at {where} refused the connection ({reason}): allow this host and "
            f"user in its pg_hba.conf, or fix the user in CONVOHOOK_DATABASE_URL ({shown})"
        )
    if "authentication failed" in said or "role" in said or "password" in said:
        return (
            f"PostgreSQL at {where} refused user {user or '(the default)'!r} ({reason}): fix "
            f"the user or password in CONVOHOOK_DATABASE_URL ({shown})"
        )
    if "resolve host" in said or "translate host name" in said:
        return f"the host {host!r} in CONVOHOOK_DATABASE_URL does not resolve: fix it ({shown})"
    if "connection refused" in said or "no such file or directory" in said:
        return (
            f"cannot connect to PostgreSQL at {where} (connection refused): check that "
            "PostgreSQL runs there and accepts connections, or fix the host and port in "
            f"CONVOHOOK_DATABASE_URL ({shown})"
        )
    if "timeout" in said:
        return (
            f"no answer from PostgreSQL at {where} ({reason}): check that it runs and that no "
            f"firewall drops the connection, or fix CONVOHOOK_DATABASE_URL ({shown})"
        )
    return (
        f"cannot connect to PostgreSQL at {where} ({reason}): check that it runs and that "
        f"CONVOHOOK_DATABASE_URL is right ({shown})"
    )
