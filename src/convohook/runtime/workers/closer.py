"""The closer: marks done the conversations whose channel's inactivity rule has come due
(DESIGN section 7), in bounded batches, every few seconds."""

from __future__ import annotations

import asyncio
import logging

from convohook.runtime.services import Services
from convohook.usecases.inactivity import close_idle_conversations, reschedule_deadlines

log = logging.getLogger(__name__)


class Closer:
    """Every `INTERVAL_S`, closes what is due, a batch of conversations per transaction until a
    batch comes back short. Any number of closers may run against one PostgreSQL: each claims
    other rows (`SKIP LOCKED`)."""

    # DESIGN: closed within 10 s of the deadline. A round that finds nothing due is one index
    # probe, so coming round every 5 s costs nothing worth a wake-up mechanism.
    INTERVAL_S = 5.0
    # Conversations per transaction. On SQLite the batch holds the one write lock, which the
    # inbound receiver and the processor wait for: at ~0.3-0.6 ms per conversation closed
    # (docs/performance.md, "Inactivity sweep") 50 keep that wait near the hot path's own
    # transactions. PostgreSQL locks only the claimed rows, so there bigger batches just save
    # round trips.
    BATCH = {"sqlite": 50, "postgresql": 200}

    # Deadlines recomputed per transaction after a change of a setting: a plain update of
    # indexed rows, ~40-60 µs each at a million open conversations, sized as above.
    RESCHEDULE_BATCH = {"sqlite": 250, "postgresql": 1000}

    def __init__(self, services: Services) -> None:
        self.s = services
        self.batch = self.BATCH.get(services.db.dialect, 50)
        self.reschedule_batch = self.RESCHEDULE_BATCH.get(services.db.dialect, 250)

    async def run_once(self) -> int:
        s = self.s
        # New deadlines after a change of a setting first: they decide what is due.
        more = True
        while more:
            more = await s.db.relaxed.run_retrying(
                reschedule_deadlines, limit=self.reschedule_batch
            )
            await asyncio.sleep(0)  # let the hot path in between batches
        closed = 0
        while True:
            # Relaxed, as the processor: the dispatcher's claim of these events' deliveries is
            # durable and comes later in the same log.
            sweep = await s.db.relaxed.run_retrying(
                close_idle_conversations, clock=s.clock, limit=self.batch
            )
            closed += sweep.closed
            if sweep.closed:
                s.signals.deliveries.notify()
                s.signals.bots.notify()  # bots on conversation.closed
                s.signals.profiles.notify()
            if not sweep.full:
                break
            await asyncio.sleep(0)  # let the hot path in between batches
        if closed:
            log.info("inactivity: marked %d conversation(s) done", closed)
        return closed

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("inactivity: sweep failed, trying again in %g s", self.INTERVAL_S)
            await asyncio.sleep(self.INTERVAL_S)
