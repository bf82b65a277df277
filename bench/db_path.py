"""The database's share of an opening, alone: CPU per brand-new customer's DM, no HTTP at all.

    .venv/bin/python bench/db_path.py [--database sqlite|postgresql] [--events 20000] [--batch 32]
                                      [--bots 3]

In one thread, the transactions convohook runs per opening, in batches as the closed loop forms
them: the inbound group commit (durable), processing (relaxed, profile lookups claimed), the
profiles' results, the dispatcher's claim (durable) and the attempts' record (relaxed). The
lookups and the POSTs are not made: their results are made up (a profile, a 200). Reported:
CPU (`time.thread_time`, so the machine's noise mostly drops out) and wall time per event, and
statements per event (SQLite). The end-to-end harness (`run.py`) says how much this matters;
this one says, repeatably, whether a change to the storage path made it cheaper.

With `--bots N`, the org has N enabled bots on conversation.opened (bench/bots.py's, made with
the use cases, and three agents): the processing transaction decides their runs, and after each
round the bot runner's transactions carry them out (`carry_out_runs`, BotRunner.BATCH runs at a
time, until none is left). Their CPU is reported apart: the runner's share per opening. The
replies they queue are not sent (the sender's claim and record are not counted).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bots
import psycopg
from psycopg import sql

from convohook.delivery.result import AttemptResult
from convohook.domain.model import AwaitingProfile
from convohook.domain.payload import CustomerProfile
from convohook.meta.notifications import encode, entry, notification, text_message
from convohook.runtime.workers.bot_runner import BotRunner
from convohook.storage.base import Transaction
from convohook.storage.database import Database, open_database
from convohook.usecases.agents import NewAgent, create_agent
from convohook.usecases.bot_runs import carry_out_runs
from convohook.usecases.bots import create_bot
from convohook.usecases.delivery import SentAttempt, record_attempts
from convohook.usecases.processing import ProcessingPolicy, process_pending
from convohook.usecases.profiles import ProfileResult, apply_profile_results

from common import ACCOUNT
from seed import seed_channel

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LEASE_MS = 60_000


def _bodies(start: int, count: int, now: int) -> list[bytes]:
    return [
        encode(
            notification(
                [entry(ACCOUNT, [text_message(f"c{i}", ACCOUNT, f"m{i}", now, f"hello {i}")])]
            )
        )
        for i in range(start, start + count)
    ]


def _add_bots(db: Database, org_id: str, count: int) -> None:
    def write(tx: Transaction) -> None:
        now = int(time.time() * 1000)
        for k in range(bots.AGENTS):
            create_agent(tx, org_id, NewAgent(f"Agent {k}", f"agent{k}@bench.example"), now)
        for bot in bots.definitions(count):
            create_bot(
                tx,
                org_id,
                bot["name"],
                bot["trigger"],
                now,
                conditions=bot["conditions"],
                actions=bot["actions"],
            )

    db.run_sync(write)


def _run_bots(db: Database, runner_batch: int) -> tuple[int, float]:
    """The runner's transactions until no run can run; (runs, CPU seconds)."""
    cpu = time.thread_time()
    runs = 0
    while True:
        report = db.relaxed.run_sync(
            carry_out_runs, clock=lambda: int(time.time() * 1000), limit=runner_batch
        )
        runs += report.runs
        if report.runs == 0:
            return runs, time.thread_time() - cpu


def _round(db: Database, bodies: list[bytes], policy: ProcessingPolicy, rng: random.Random) -> int:
    now = int(time.time() * 1000)
    relaxed = db.relaxed
    db.run_sync(lambda tx: tx.insert_notifications(bodies, now))
    report = relaxed.run_sync(process_pending, now_ms=now, limit=len(bodies), policy=policy)
    waiting: list[AwaitingProfile] = list(report.awaiting.values())
    results = [
        ProfileResult(w, CustomerProfile(username=f"user_{w.contact.igsid}", name="Bench"))
        for w in waiting
    ]
    relaxed.run_sync(apply_profile_results, results, now)
    due = db.run_sync(lambda tx: tx.claim_due_deliveries(now, now + LEASE_MS, len(bodies)))
    sent = [SentAttempt(d, AttemptResult(200, "", 1.0, None, None), now) for d in due]
    relaxed.run_sync(
        record_attempts, sent, now_ms=now, schedule=(5.0, 300.0), rng=rng, disable_after_ms=1
    )
    return len(sent)


def _run(db: Database, events: int, batch: int, runner_batch: int) -> dict[str, float]:
    policy = ProcessingPolicy(profile_lease_ms=LEASE_MS)
    rng = random.Random(1)
    warm = 2 * batch
    for start in range(0, warm, batch):
        _round(db, _bodies(start, batch, int(time.time() * 1000)), policy, rng)
        _run_bots(db, runner_batch)
    batches = [
        _bodies(start, batch, int(time.time() * 1000))
        for start in range(warm, warm + events, batch)
    ]
    delivered = runs = 0
    bots_cpu = 0.0
    cpu, wall = time.thread_time(), time.perf_counter()
    for bodies in batches:
        delivered += _round(db, bodies, policy, rng)
        ran, spent = _run_bots(db, runner_batch)
        runs += ran
        bots_cpu += spent
    cpu, wall = time.thread_time() - cpu - bots_cpu, time.perf_counter() - wall
    if delivered != len(batches) * batch:
        raise SystemExit(f"{delivered} delivered of {len(batches) * batch}: the path is broken")
    return {
        "cpu_us": cpu / delivered * 1e6,
        "wall_us": wall / delivered * 1e6,
        "events": delivered,
        "runs": runs,
        "bots_cpu_us": bots_cpu / delivered * 1e6,
    }


def _count_statements(db: Database) -> Counter[str]:
    counts: Counter[str] = Counter()
    conn = getattr(db.storage, "_conn", None)
    if conn is not None:
        conn.set_trace_callback(lambda s: counts.update([s.split(None, 1)[0].upper()]))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=32, help="events per transaction")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--bots", type=int, default=0, help="enabled bots on conversation.opened")
    parser.add_argument(
        "--runner-batch", type=int, help="runs per runner transaction (default: BotRunner's)"
    )
    args = parser.parse_args()
    runs = []
    counted: Counter[str] = Counter()
    runner_batch = args.runner_batch or BotRunner.BATCH[args.database]
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="convohook-dbpath-") as tmp:
            if args.database == "sqlite":
                url, drop = f"sqlite:///{tmp}/bench.db", None
            else:
                name = f"convohook_dbpath_{int(time.time() * 1000)}"
                with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                url, drop = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, name
            db = open_database(url)
            try:
                channel = seed_channel(db, int(time.time() * 1000), "conversation.opened")
                if args.bots:
                    _add_bots(db, channel.org_id, args.bots)
                counted = _count_statements(db)
                runs.append(_run(db, args.events, args.batch, runner_batch))
            finally:
                db.close()
                if drop is not None:
                    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                        admin.execute(
                            sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(drop))
                        )
    runs.sort(key=lambda r: r["cpu_us"])
    median = runs[len(runs) // 2]
    print(
        f"{args.database}, batch {args.batch}, {int(median['events'])} events: "
        f"CPU {median['cpu_us']:.0f} µs/event (runs: "
        + ", ".join(f"{r['cpu_us']:.0f}" for r in runs)
        + f"), wall {median['wall_us']:.0f} µs/event"
    )
    if args.bots:
        print(
            f"{args.bots} bots: {int(median['runs'])} runs, the runner's CPU "
            f"{median['bots_cpu_us']:.0f} µs per opening (runs: "
            + ", ".join(f"{r['bots_cpu_us']:.0f}" for r in runs)
            + f"; {runner_batch} runs per transaction)"
        )
    if counted:
        # counted over the last run, warm-up included
        total = (args.events + 2 * args.batch) or 1
        per = ", ".join(f"{k} {v / total:.2f}" for k, v in counted.most_common())
        print(f"statements per event: {sum(counted.values()) / total:.1f} ({per})")


if __name__ == "__main__":
    main()
