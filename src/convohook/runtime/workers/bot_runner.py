"""The bot runner: carries out Bot Studio runs (usecases/bot_runs.py), each in one transaction
with its effects, woken when runs are written and looking every second anyway (a run written
by a request of another process, on SQLite, wakes nobody here)."""

from __future__ import annotations

import asyncio
import logging

from convohook.runtime.services import Services
from convohook.runtime.signal import wait_any
from convohook.storage.errors import StorageError
from convohook.usecases.bot_runs import (
    RunReport,
    carry_out_runs,
    fail_next_run,
    has_pending_runs,
)

log = logging.getLogger(__name__)


class BotRunner:
    # Runs per transaction. On SQLite a transaction runs on the event loop and holds the one
    # write lock, so a batch is a stall of everything else, the inbound receiver included: a
    # run that replies and assigns is 20-30 statements, ~0.5-1 ms, and 8 keep the stall near
    # the hot path's own transactions (docs/performance.md, "bots beside the opening").
    # PostgreSQL's runner works in a thread and locks only its rows.
    BATCH = {"sqlite": 8, "postgresql": 100}
    POLL_S = 1.0
    # Openings first: while the processor or the dispatcher has work waiting in this process,
    # a batch of runs waits for it, up to this long (runs still progress under a steady load).
    GIVE_WAY_S = 0.05
    GIVE_WAY_STEP_S = 0.002

    def __init__(self, services: Services) -> None:
        self.s = services
        self.batch = self.BATCH.get(services.db.dialect, 50)
        self.profile_deadline_ms = int(services.settings.profile_deadline * 1000)

    async def _give_way(self) -> None:
        """Bots act beside the opening, never in its way: on SQLite every transaction runs on
        the event loop and takes the one write lock, so a batch of runs started while Meta's
        POSTs and webhooks wait would hold them up."""
        signals = self.s.signals
        # Polled: what is awaited is a signal *not* being set, which no event says.
        for _ in range(int(self.GIVE_WAY_S / self.GIVE_WAY_STEP_S)):
            if not (signals.notifications.pending or signals.deliveries.pending):
                return
            await asyncio.sleep(self.GIVE_WAY_STEP_S)

    async def run_once(self) -> RunReport:
        s = self.s
        await self._give_way()
        # A read first: finding nothing (no bots, or all done) then takes no write lock.
        if not await s.db.read(has_pending_runs):
            return RunReport()
        # Relaxed, as the processor: what a run queues (a reply, a delivery) reaches the world
        # only through a durable claim later in the same log, which makes the run durable too;
        # a run lost to a power cut was seen by nobody and is pending again.
        report: RunReport = await s.db.relaxed.run_retrying(
            carry_out_runs,
            clock=s.clock,
            limit=self.batch,
            profile_deadline_ms=self.profile_deadline_ms,
        )
        for status, runs in report.statuses.items():
            s.metrics.bot_runs.labels(status).inc(runs)
        for (kind, outcome), actions in report.actions.items():
            s.metrics.bot_actions.labels(kind, outcome).inc(actions)
        if report.replies:
            s.signals.replies.notify()
        if report.events:
            s.signals.deliveries.notify()
            s.signals.profiles.notify()
        if report.runs:
            s.signals.bot_runs.notify()
        return report

    async def _isolate_poison(self) -> None:
        """A batch failed with an error that is not the database's: the same runs would fail
        it again forever. Try them one by one and set aside the one that fails alone."""
        s = self.s
        try:
            await s.db.run_retrying(
                carry_out_runs,
                clock=s.clock,
                limit=1,
                profile_deadline_ms=self.profile_deadline_ms,
            )
        except StorageError:
            raise
        except Exception as exc:
            log.exception("bots: a run failed; marking it failed")
            await s.db.run_retrying(fail_next_run, repr(exc), s.clock())

    async def run(self) -> None:
        s = self.s
        while True:
            s.beat("bots")
            try:
                report = await self.run_once()
            except StorageError as exc:
                log.error("bots: database unavailable, retrying in 1 s: %s", exc)
                await asyncio.sleep(1)
                continue
            except Exception:
                log.exception("bots: a batch of runs failed; isolating the run at fault")
                try:
                    await self._isolate_poison()
                except Exception:
                    log.exception("bots: could not isolate the failing run")
                    await asyncio.sleep(1)
                continue
            if report.runs >= self.batch:
                await asyncio.sleep(0)  # let the hot path in between batches
            elif report.left:
                # Runs wait for a profile (the enricher wakes us), a webhook's first attempt
                # (the dispatcher does) or their turn; the poll finds those whose wait ran out.
                await wait_any([s.signals.bots, s.signals.webhooks_out], self.POLL_S)
            else:
                await s.signals.bots.wait(self.POLL_S)
