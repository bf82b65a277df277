"""One measurement of one running target: warm up, play Meta, wait for every webhook, compute.

The clock: every DM is timed from `time.monotonic_ns()` taken by the harness just before the POST
that carries it, to `time.monotonic_ns()` taken by the subscriber (another process, the same
system-wide clock) when the Conversation Opened for that customer arrived. Events per second end
to end are the DMs delivered over the time from the first POST to the last webhook received.

CPU seconds (all threads) are read from /proc before and after the measured part, so start-up and
warm-up do not count; the peak RSS (VmHWM) is the process's peak since it started.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import bots

import load
import procs
from common import BenchError, customer_index, customer_username
from sink_client import Sink
from stats import summary_ms
from targets import Databases, Running


@dataclass(frozen=True)
class Plan:
    batch: int  # DMs per notification
    customers: int  # DMs measured, one per brand-new customer
    concurrency: int  # closed loop: POSTs in flight
    rate: float | None  # open loop: DMs/s offered; None for the closed loop
    warmup: int  # DMs sent and delivered before the clock starts
    timeout: float  # seconds at most to wait for all deliveries
    stall: float  # seconds without a delivery before giving up on the rest


class Customers:
    """Hands out brand-new customer numbers, never the same twice in one harness run."""

    def __init__(self, start: int = 1) -> None:
        self.next = start

    def take(self, count: int) -> int:
        first = self.next
        self.next += count
        return first


@dataclass
class CpuSnapshot:
    target: float
    sink: float
    harness: float
    database: dict[int, float]  # per backend; one that has exited reads 0

    @classmethod
    def take(cls, running: Running, sink: Sink, db_pids: Sequence[int]) -> CpuSnapshot:
        return cls(
            target=sum(procs.cpu_seconds(pid) for pid in running.pids),
            sink=procs.cpu_seconds(sink.proc.pid),
            harness=time.process_time(),
            database={pid: procs.cpu_seconds(pid) for pid in db_pids},
        )


async def _play(
    bases: Sequence[str], notes: list[load.Notification], plan: Plan
) -> load.LoadResult:
    if plan.rate is None:
        return await load.closed_loop(bases, notes, plan.concurrency)
    return await load.open_loop(bases, notes, plan.rate)


def _accepted(notes: Sequence[load.Notification], result: load.LoadResult) -> int:
    return sum(note.count for note, ok in zip(notes, result.ok, strict=True) if ok)


def _acknowledged(notes: Sequence[load.Notification], result: load.LoadResult) -> set[str]:
    """The customers whose DM convohook acknowledged: each opens a conversation."""
    return {
        customer_username(i)
        for note, ok in zip(notes, result.ok, strict=True)
        if ok
        for i in range(note.first, note.first + note.count)
    }


async def _warm_up(running: Running, sink: Sink, plan: Plan, customers: Customers) -> set[str]:
    if plan.warmup <= 0:
        return set()
    first = customers.take(plan.warmup)
    notes = load.build(first, plan.warmup, plan.batch)
    result = await load.closed_loop(running.bases, notes, min(plan.concurrency, 16))
    accepted = _accepted(notes, result)
    if accepted == 0:
        raise BenchError(
            f"{running.kind} accepted none of the warm-up DMs ({dict(result.statuses)}): "
            f"{result.errors[:1]}; its log ({running.log}):\n{procs.tail(running.log)}"
        )
    await sink.wait_for(
        accepted, timeout=plan.timeout, stall=plan.stall, target=running.kind, log=running.log
    )
    await sink.collect(None)
    return _acknowledged(notes, result)


async def _relay_stats(running: Running) -> dict[str, Any] | None:
    if running.kind != "relay":
        return None
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
            http.get(f"{running.base}/_relay/stats") as response,
        ):
            stats: dict[str, Any] = await response.json()
            return stats
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _backends_cpu(before: dict[int, float], after: dict[int, float]) -> tuple[float, int]:
    """The backends' CPU over the measured part, and how many exited meanwhile: their last CPU
    time is unknown, so they are left out (not subtracted)."""
    alive = {pid: cpu for pid, cpu in after.items() if cpu >= before.get(pid, 0.0)}
    gone = len(after) - len(alive)
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in alive.items()), gone


def _total(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 1) if known else None


async def measure(
    running: Running,
    sink: Sink,
    plan: Plan,
    customers: Customers,
    dbs: Databases | None,
    bot_ids: Sequence[str] = (),
) -> dict[str, Any]:
    opened = await _warm_up(running, sink, plan, customers)

    first = customers.take(plan.customers)
    notes = load.build(first, plan.customers, plan.batch)
    db_pids = (
        dbs.backend_pids(running.database_url) if dbs and running.database_url is not None else []
    )
    before = CpuSnapshot.take(running, sink, db_pids)
    result = await _play(running.bases, notes, plan)
    inbound_done_ns = max(s + d for s, d in zip(result.started_ns, result.latency_ns, strict=True))
    expected = _accepted(notes, result)
    if expected == 0:
        raise BenchError(
            f"{running.kind} accepted none of the {len(notes)} notifications "
            f"({dict(result.statuses)}): {result.errors[:1]}; its log ({running.log}):\n"
            f"{procs.tail(running.log)}"
        )
    await sink.wait_for(
        expected, timeout=plan.timeout, stall=plan.stall, target=running.kind, log=running.log
    )
    if dbs and running.database_url is not None:
        db_pids = sorted(set(db_pids) | set(dbs.backend_pids(running.database_url)))
    after = CpuSnapshot.take(running, sink, db_pids)
    checks = await sink.collect(running.webhook_secret)
    stamps: dict[str, int] = checks.pop("stamps")

    latencies: list[int] = []
    last_stamp = 0
    for username, stamp in stamps.items():
        i = customer_index(username)
        if i is None or not first <= i < first + plan.customers:
            continue  # a late delivery of the warm-up, or not ours
        k = (i - first) // plan.batch
        latencies.append(stamp - result.started_ns[k])
        last_stamp = max(last_stamp, stamp)
    delivered = len(latencies)
    first_post = min(result.started_ns)
    elapsed_s = (last_stamp - first_post) / 1e9 if delivered else None
    target_cpu = after.target - before.target
    database_cpu, backends_gone = _backends_cpu(before.database, after.database)
    bot_figures = None
    if bot_ids and running.database_url is not None:
        # Wall clock = monotonic + offset (one machine): the database dates runs and replies
        # in wall-clock milliseconds.
        offset_ns = time.time_ns() - time.monotonic_ns()

        def sent_wall_ms(username: str) -> float | None:
            i = customer_index(username)
            if i is None or not first <= i < first + plan.customers:
                return None
            return (result.started_ns[(i - first) // plan.batch] + offset_ns) / 1e6

        bot_figures = await bots.settle_and_check(
            running.database_url,
            sink.graph,
            list(bot_ids),
            opened | _acknowledged(notes, result),
            sent_wall_ms,
            {u: (stamp + offset_ns) / 1e6 for u, stamp in stamps.items()},
        )
    return {
        "target": running.kind,
        "mode": "closed" if plan.rate is None else "open",
        "batch": plan.batch,
        "concurrency": plan.concurrency if plan.rate is None else None,
        "rate": plan.rate,
        "offered_rate": round(result.offered_rate, 1) if result.offered_rate else None,
        "customers": plan.customers,
        "warmup": plan.warmup,
        "accepted": expected,
        "delivered": delivered,
        "missing": expected - delivered,
        "elapsed_s": round(elapsed_s, 3) if elapsed_s else None,
        "inbound_done_s": round((inbound_done_ns - first_post) / 1e9, 3),
        "events_per_s": round(delivered / elapsed_s, 1) if elapsed_s else 0.0,
        "e2e_ms": summary_ms(latencies),
        "inbound_ms": summary_ms(result.latency_ns),
        "lateness_ms": summary_ms(result.lateness_ns) if result.lateness_ns else None,
        "inbound_statuses": dict(result.statuses),
        "inbound_errors": result.errors,
        "cpu_s": {
            "target": round(target_cpu, 2),
            "sink": round(after.sink - before.sink, 2),
            "harness": round(after.harness - before.harness, 2),
            "database": round(database_cpu, 2) if db_pids else None,
        },
        "database_backends": {"read": len(db_pids), "gone": backends_gone} if db_pids else None,
        "cpu_ms_per_event": round(target_cpu / delivered * 1000, 3) if delivered else None,
        # With a separate worker, the two processes' peaks added up (an upper bound).
        "peak_rss_mb": _total(procs.peak_rss_mb(pid) for pid in running.pids),
        "rss_end_mb": _total(procs.rss_mb(pid) for pid in running.pids),
        "checks": checks,
        "relay_stats": await _relay_stats(running),
        "bots": bot_figures,
    }
