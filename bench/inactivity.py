"""The inactivity sweep at scale: what the closer costs over a million open conversations.

    .venv/bin/python bench/inactivity.py [--database sqlite|postgresql] [--open 1000000]
        [--due 10000] [--batch 200]

Fills a fresh database with `--open` open conversations of one channel whose rule is an hour
(each with its customer, in bulk: PostgreSQL's generate_series, SQLite's recursive CTE), `--due`
of them past their deadline, and a webhook subscribed to conversation.closed. Then measures the
closer's own transaction (`close_idle_conversations`, committed as the closer commits it):

- a sweep that finds nothing due (what every closer pays every few seconds), median of many;
- the batches that close the `--due` conversations, each with its event and delivery;
- the plan of the claim (EXPLAIN), which must be a range scan of the deadline index;
- a change of the channel's setting, and the closer's batches that then give every open
  conversation its new deadline.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg
from psycopg import sql

from convohook.domain.model import Channel
from convohook.runtime.workers.closer import Closer
from convohook.storage.database import Database, open_database
from convohook.usecases.channels import ChannelChanges, update_channel
from convohook.usecases.inactivity import Sweep, close_idle_conversations, reschedule_deadlines

from seed import seed_channel

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOUR_S = 3600
HOUR_MS = HOUR_S * 1000
CLAIM = (
    "SELECT id FROM conversations WHERE status = 'open' "
    "AND idle_deadline_ms <= {now} ORDER BY idle_deadline_ms LIMIT {limit}"
)

# The bulk fill, one statement per table. Conversation g's last message went `age` ago: an
# hour and a half for the first `due` (overdue by half an hour), otherwise spread over the
# last 50 minutes (due within the next 10 to 60 minutes).
_CONTACTS = (
    "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, username, name, "
    "profile_status, profile_fetched_at_ms, created_at_ms) "
    "SELECT 'ct_' || g, {org}, {channel}, 'ig' || g, 'customer_' || {padded}, 'u' || g, "
    "'User ' || g, 'ok', {now}, {now} FROM {series}"
)
_CONVERSATIONS = (
    "INSERT INTO conversations (id, org_id, channel_id, contact_id, status, reason, "
    "opened_at_ms, last_message_at_ms, idle_deadline_ms) "
    "SELECT 'cv_' || {padded}, {org}, {channel}, 'ct_' || g, 'open', 'first_message', "
    "{now} - 2 * {hour}, {now} - {age}, {now} - {age} + {hour} FROM {series}"
)


@contextmanager
def fresh_database(dialect: str) -> Iterator[str]:
    if dialect == "sqlite":
        with tempfile.TemporaryDirectory(prefix="convohook-inactivity-") as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    name = f"convohook_inactivity_{int(time.time())}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def setup(db: Database, now: int) -> Channel:
    channel = seed_channel(db, now, "conversation.closed")
    changes = ChannelChanges(auto_done_after=HOUR_S, change_auto_done_after=True)
    return db.run_sync(update_channel, channel.org_id, channel.id, changes)


def fill(db: Database, url: str, channel: Channel, count: int, due: int, now: int) -> float:
    """Seconds to write `count` customers and their open conversations."""
    if db.dialect == "sqlite":
        series = "s"
        prefix = (
            f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {count}) "
        )
        padded = "printf('%010d', g)"
    else:
        series, prefix = f"generate_series(1, {count}) AS g", ""
        padded = "lpad(g::text, 10, '0')"
    # psycopg reads % as a placeholder: PostgreSQL's mod() instead.
    spread = "g % 3000" if db.dialect == "sqlite" else "mod(g, 3000)"
    age = f"CASE WHEN g <= {due} THEN {HOUR_MS + HOUR_MS // 2} ELSE ({spread}) * 1000 END"
    params = {
        "org": f"'{channel.org_id}'",
        "channel": f"'{channel.id}'",
        "padded": padded,
        "now": str(now),
        "series": series,
        "hour": str(HOUR_MS),
        "age": age,
    }
    started = time.perf_counter()
    with db.storage.transaction() as tx:
        x = tx._x  # type: ignore[attr-defined]
        if db.dialect == "postgresql":
            x("SET LOCAL statement_timeout = 0")  # convohook's 30 s guard, for a bulk load
        for template in (_CONTACTS, _CONVERSATIONS):
            statement = template.format(**params)
            x(prefix + statement)
    analyze(db, url)
    return time.perf_counter() - started


def analyze(db: Database, url: str) -> None:
    """Statistics, as a database that grew to this size would have them."""
    if db.dialect == "sqlite":
        with db.storage.transaction() as tx:
            tx._x("ANALYZE")  # type: ignore[attr-defined]
        # The fill went through the write-ahead log (a gigabyte of it): copied into the file,
        # as the checkpointer of a running convohook would have done long before.
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    with psycopg.connect(url, autocommit=True) as conn:  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE conversations")
        conn.execute("VACUUM ANALYZE contacts")


def plan(db: Database, now: int, limit: int) -> str:
    query = CLAIM.format(now=now, limit=limit)
    with db.storage.transaction() as tx:  # PostgreSQL locks nothing in a read-only one
        x = tx._x  # type: ignore[attr-defined]
        if db.dialect == "sqlite":
            return "\n".join(str(r[-1]) for r in x("EXPLAIN QUERY PLAN " + query).fetchall())
        rows = x("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + query + " FOR UPDATE SKIP LOCKED")
        return "\n".join(str(r[0]) for r in rows.fetchall())


def timed(call: Callable[[], Sweep]) -> tuple[float, Sweep]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--open", type=int, default=1_000_000, help="open conversations")
    parser.add_argument("--due", type=int, default=10_000, help="of which overdue")
    parser.add_argument(
        "--batch", type=int, help="conversations per transaction (default: the closer's)"
    )
    parser.add_argument("--idle-sweeps", type=int, default=200, help="sweeps finding nothing")
    args = parser.parse_args()
    now = int(time.time() * 1000)

    with fresh_database(args.database) as url:
        db = open_database(url)
        args.batch = args.batch or Closer.BATCH[db.dialect]
        reschedule_batch = Closer.RESCHEDULE_BATCH[db.dialect]
        try:
            channel = setup(db, now)
            filled = fill(db, url, channel, args.open, args.due, now)
            print(f"{args.database}: {args.open:,} open conversations, {args.due:,} overdue")
            print(f"  fill: {filled:.1f} s")
            relaxed = db.relaxed  # as the closer commits

            # Nothing due: a moment before the earliest deadline.
            quiet = now - HOUR_MS // 2 - 1
            idle = [
                timed(
                    lambda: relaxed.run_sync(
                        close_idle_conversations, clock=lambda: quiet, limit=args.batch
                    )
                )[0]
                for _ in range(args.idle_sweeps)
            ]
            print(
                f"  sweep finding nothing due: median {statistics.median(idle) * 1e3:.3f} ms, "
                f"max {max(idle) * 1e3:.3f} ms ({args.idle_sweeps} sweeps)"
            )
            print("  plan of the claim:\n    " + plan(db, now, args.batch).replace("\n", "\n    "))

            batches: list[float] = []
            closed = 0
            while True:
                seconds, sweep = timed(
                    lambda: relaxed.run_sync(
                        close_idle_conversations, clock=lambda: now, limit=args.batch
                    )
                )
                if sweep.claimed == 0:
                    break
                batches.append(seconds)
                closed += sweep.closed
            assert closed == args.due, (closed, args.due)
            total = sum(batches)
            print(
                f"  closing {closed:,} due: {len(batches)} batches of {args.batch}, "
                f"median {statistics.median(batches) * 1e3:.1f} ms per batch "
                f"(p95 {sorted(batches)[int(len(batches) * 0.95)] * 1e3:.1f} ms), "
                f"{total / closed * 1e6:.0f} µs per conversation, {total:.2f} s in all"
            )

            started = time.perf_counter()
            changes = ChannelChanges(auto_done_after=2 * HOUR_S, change_auto_done_after=True)
            db.run_sync(update_channel, channel.org_id, channel.id, changes)
            changed = time.perf_counter() - started
            steps: list[float] = []
            while True:
                step_started = time.perf_counter()
                more = relaxed.run_sync(reschedule_deadlines, limit=reschedule_batch)
                steps.append(time.perf_counter() - step_started)
                if not more:
                    break
            print(
                f"  changing the channel's setting: {changed * 1e3:.1f} ms; then the new "
                f"deadlines of {args.open - args.due:,} open conversations in {len(steps) - 1} "
                f"batches of {reschedule_batch}, median "
                f"{statistics.median(steps) * 1e3:.1f} ms per batch, {sum(steps):.1f} s in all"
            )
        finally:
            db.close()


if __name__ == "__main__":
    main()
