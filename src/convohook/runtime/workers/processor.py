"""The processor: stored notifications, in order, through the conversation state machine, one
transaction per batch; what opens goes into the outbox."""

from __future__ import annotations

import asyncio
import logging

from convohook.runtime.services import Services
from convohook.runtime.workers.profiles import ProfileEnricher, profile_lease_ms
from convohook.storage.errors import StorageError
from convohook.usecases.processing import (
    ProcessingPolicy,
    ProcessReport,
    process_pending,
    quarantine_oldest,
)

log = logging.getLogger(__name__)

PROCESS_BATCH = 200


class Processor:
    POISON_TRIES = 3
    POISON_RETRY_S = 1.0

    def __init__(self, services: Services, handoff: ProfileEnricher | None = None) -> None:
        """`handoff`: given the openings' profile lookups, claimed in the processing
        transaction, to start at once (one transaction and a wake-up fewer per opening)."""
        self.s = services
        self.handoff = handoff
        self.policy = ProcessingPolicy(
            profile_deadline_ms=int(services.settings.profile_deadline * 1000),
            profile_ttl_ms=int(services.settings.profile_ttl * 1000),
            profile_lease_ms=profile_lease_ms(services) if handoff is not None else None,
        )

    async def run_once(self, limit: int = PROCESS_BATCH) -> ProcessReport:
        s = self.s
        # Relaxed: nothing outside has seen an opening until the dispatcher's claim, which
        # commits durably and so makes this durable too.
        report = await s.db.relaxed.run_retrying(
            process_pending, now_ms=s.clock(), limit=limit, policy=self.policy
        )
        metrics = s.metrics
        metrics.openings.labels("first_message").inc(report.openings - report.reopened)
        metrics.openings.labels("reopened").inc(report.reopened)
        metrics.duplicates.inc(report.duplicates)
        if report.deliveries_ready:
            s.signals.deliveries.notify()
        if report.bot_runs:
            s.signals.bots.notify()
        if report.awaiting and self.handoff is not None:
            self.handoff.take(list(report.awaiting.values()), wake_bots=report.bot_runs > 0)
        elif report.awaiting_profile:
            s.signals.profiles.notify()
        for account_id in sorted(report.unknown_accounts):
            log.warning(
                "notification for Instagram account %s acknowledged and skipped: no channel has "
                "that account_id (connect it with POST /api/v1/channels)",
                account_id,
                extra={"account_id": account_id},
            )
        return report

    async def run(self) -> None:
        while True:
            self.s.beat("processor")
            if self.handoff is not None:
                # Backpressure: what waits for a lookup waits as a pending notification on
                # disk, not as a task in memory whose claim could run out before its turn.
                await self.handoff.room()
            try:
                report = await self.run_once()
            except StorageError as exc:
                log.error("processor: database unavailable, retrying in 1 s: %s", exc)
                await asyncio.sleep(1)
                continue
            except Exception:
                log.exception("processor: a batch failed; isolating the notification at fault")
                await self._isolate_poison()
                continue
            if report.notifications < PROCESS_BATCH:
                await self.s.signals.notifications.wait(self.s.settings.idle_poll_seconds)

    async def _isolate_poison(self) -> None:
        """Process the oldest notification alone, and set it aside only if it fails alone
        `POISON_TRIES` times: a fault in that notification, not a passing one elsewhere (an
        outage the storage did not recognise must never cost an acknowledged notification)."""
        error: Exception | None = None
        for attempt in range(self.POISON_TRIES):
            if attempt:
                await asyncio.sleep(self.POISON_RETRY_S)
            try:
                await self.run_once(limit=1)
                return
            except StorageError:
                await asyncio.sleep(1)
                return
            except Exception as exc:
                error = exc
        log.error(
            "processor: notification quarantined as 'failed' after failing alone %d times",
            self.POISON_TRIES,
            exc_info=error,
        )
        await self.s.db.relaxed.run(quarantine_oldest, repr(error), self.s.clock())
