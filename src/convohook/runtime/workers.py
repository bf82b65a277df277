"""The three loops behind the inbound receiver: processor, profile enricher, dispatcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import replace

from convohook.delivery.limits import WebhookLimits
from convohook.delivery.request import OutgoingRequest, build_request
from convohook.delivery.result import AttemptResult
from convohook.domain.model import AwaitingProfile, DueDelivery
from convohook.meta.graph import ProfileUnavailable
from convohook.outbound.webhooks import USER_AGENT, send
from convohook.runtime.metrics import status_class
from convohook.runtime.services import Services
from convohook.storage.base import StorageError, Transaction
from convohook.usecases.delivery import SentAttempt, record_attempts
from convohook.usecases.processing import (
    ProcessingPolicy,
    ProcessReport,
    process_pending,
    quarantine,
)
from convohook.usecases.profiles import ProfileResult, apply_profile_results
from convohook.usecases.retention import clean_once

log = logging.getLogger(__name__)

PROCESS_BATCH = 200
CLAIM_BATCH = 100


def _quarantine_oldest(tx: Transaction, error: str, now_ms: int) -> None:
    for stored in tx.pending_notifications(1):
        quarantine(tx, stored.id, error, now_ms)


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
        if report.deliveries:
            s.signals.deliveries.notify()
        if report.awaiting and self.handoff is not None:
            self.handoff.take(list(report.awaiting.values()))
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
        await self.s.db.relaxed.run(_quarantine_oldest, repr(error), self.s.clock())


def _contact_context(waiting: AwaitingProfile) -> dict[str, str]:
    contact = waiting.contact
    return {"org_id": contact.org_id, "channel_id": contact.channel_id, "contact_id": contact.id}


def profile_lease_ms(services: Services) -> int:
    """How long a profile lookup is claimed: long enough for the lookup and its recording."""
    return int((services.settings.graph_timeout * 2 + 5) * 1000)


class ProfileEnricher:
    RETRY_POLL_S = 1.0  # postponed lookups are due within seconds; no other process wakes us
    BATCH = 256
    # Lookups handed over and not yet recorded, beyond which the processor waits: a few
    # rounds of the Graph API's connection pool, far below what the lease allows for.
    MAX_HANDED = 1024

    def __init__(self, services: Services) -> None:
        self.s = services
        self._tasks: set[asyncio.Task[None]] = set()
        self.handed = 0
        self._room = asyncio.Event()
        self._room.set()

    def take(self, waiting: list[AwaitingProfile]) -> None:
        """Look up profiles already claimed by this process (the processor's handoff)."""
        task = asyncio.create_task(self._complete(waiting))
        self._tasks.add(task)
        self._handed(len(waiting))
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._handed(-len(waiting)))

    async def cancel_handed(self) -> None:
        """On shutdown: their claims run out and whoever runs next looks them up."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def room(self) -> None:
        """Return once fewer than `MAX_HANDED` handed-over lookups are in flight."""
        await self._room.wait()

    def _handed(self, change: int) -> None:
        self.handed += change
        if self.handed >= self.MAX_HANDED:
            self._room.clear()
        else:
            self._room.set()

    async def _complete(self, waiting: list[AwaitingProfile]) -> None:
        s = self.s
        try:
            results = await asyncio.gather(*(self._lookup(w) for w in waiting))
            ready = await s.db.relaxed.run_retrying(apply_profile_results, list(results), s.clock())
        except Exception:
            # The claim runs out and the polling loop takes these over: late, never lost.
            log.exception("profiles: handing over %d lookups failed", len(waiting))
            return
        if ready:
            s.signals.deliveries.notify()

    async def _lookup(self, waiting: AwaitingProfile) -> ProfileResult:
        try:
            profile = await self.s.graph.fetch_profile(waiting.contact.igsid, waiting.access_token)
        except ProfileUnavailable as exc:
            log.warning(
                "profile of %s unavailable (%s)%s",
                waiting.contact.igsid,
                exc.reason,
                ", will retry" if exc.retryable else "",
                extra=_contact_context(waiting),
            )
            return ProfileResult(waiting, None, retryable=exc.retryable, error=exc.reason)
        except Exception as exc:  # one odd answer must not fail the other lookups of the batch
            log.exception(
                "profile lookup of %s failed unexpectedly",
                waiting.contact.igsid,
                extra=_contact_context(waiting),
            )
            return ProfileResult(waiting, None, retryable=True, error=repr(exc))
        return ProfileResult(waiting, profile)

    async def run_once(self) -> int:
        s = self.s
        now = s.clock()
        lease_ms = profile_lease_ms(s)
        waiting = await s.db.relaxed.run(
            lambda tx: tx.claim_awaiting_profiles(now, now + lease_ms, self.BATCH)
        )
        if not waiting:
            return 0
        results = await asyncio.gather(*(self._lookup(w) for w in waiting))
        ready = await s.db.relaxed.run_retrying(apply_profile_results, list(results), s.clock())
        if ready:
            s.signals.deliveries.notify()
        return len(waiting)

    async def run(self) -> None:
        while True:
            self.s.beat("profiles")
            try:
                handled = await self.run_once()
            except StorageError as exc:
                log.error("profiles: database unavailable, retrying in 1 s: %s", exc)
                await asyncio.sleep(1)
                continue
            except Exception:
                log.exception("profiles: unexpected error, retrying in 1 s")
                await asyncio.sleep(1)
                continue
            if handled < self.BATCH:  # drained: asking again now would find nothing
                await self.s.signals.profiles.wait(self.RETRY_POLL_S)


class Dispatcher:
    """Claims due deliveries, sends them concurrently, and records results in batches."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self._results: asyncio.Queue[SentAttempt] = asyncio.Queue()
        self._in_flight = 0
        self._slot_free = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._limits = WebhookLimits()
        self._drained = False  # the last claim took everything due: wait for a wake-up

    @property
    def capacity(self) -> int:
        return self.s.settings.delivery_concurrency - self._in_flight

    async def _attempt(self, due: DueDelivery, attempted_at: int) -> SentAttempt:
        s = self.s
        request: OutgoingRequest | None = None
        try:
            request = build_request(due, attempted_at // 1000)
            result = await send(
                s.delivery_session,
                due.url,
                request.headers,
                request.body,
                timeout=due.timeout_s or s.settings.delivery_timeout,
                allow_private=s.settings.allow_private_targets,
                exempt_origins=s.exempt_origins,
                allowed_networks=s.settings.allowed_target_networks,
            )
        except Exception as exc:
            # Logged as a failed attempt and retried on the schedule, rather than left claimed
            # until its lease runs out and then tried again, forever.
            log.exception(
                "dispatcher: attempt of %s failed before sending",
                due.id,
                extra={
                    "org_id": due.org_id,
                    "webhook_id": due.webhook_id,
                    "delivery_id": due.id,
                    "event_id": due.event_id,
                    "conversation_id": due.conversation_id,
                },
            )
            result = AttemptResult(None, "", 0.0, f"internal error: {exc!r}", None)
        if request is None:
            return SentAttempt(due, result, attempted_at)
        return SentAttempt(
            due,
            result,
            attempted_at,
            request_headers=request.headers_for_log(USER_AGENT),
            request_body=None if request.body == due.payload else request.body,
        )

    def _count(self, due: DueDelivery, result: AttemptResult) -> None:
        metrics = self.s.metrics
        outcome = "success" if result.ok else "failure"
        metrics.attempts.labels(outcome, status_class(result.status_code, result.error_class)).inc()
        metrics.attempt_seconds.observe(result.duration_ms / 1000)
        if result.ok:
            waited = (self.s.clock() - due.event_created_at_ms) / 1000
            metrics.opened_to_delivered.observe(max(0.0, waited))

    async def _send(self, due: DueDelivery) -> None:
        s = self.s
        try:
            sent = await self._attempt(due, s.clock())
            self._count(due, sent.result)
            if sent.result.error_class == "connect" and sent.result.duration_ms < 1000:
                # Refused at once: often a restart or a deploy in progress. One immediate retry
                # (both logged) spares the receiver a 5 s gap for a blip.
                await self._results.put(replace(sent, log_only=True))
                due = replace(due, attempt_count=due.attempt_count + 1)
                sent = await self._attempt(due, s.clock())
                self._count(due, sent.result)
            await self._results.put(sent)
        finally:
            self._limits.release(due.webhook_id)
            self._in_flight -= 1
            self._slot_free.set()

    async def _record_forever(self) -> None:
        s = self.s
        while True:
            batch = [await self._results.get()]
            while not self._results.empty() and len(batch) < 500:
                batch.append(self._results.get_nowait())
            while True:
                try:
                    # Relaxed: a record lost to a power cut leaves the delivery claimed, and it
                    # is sent again (same webhook-id) when the lease runs out.
                    recorded = await s.db.relaxed.run_retrying(
                        record_attempts,
                        batch,
                        now_ms=s.clock(),
                        schedule=s.settings.retry_schedule,
                        rng=s.rng,
                        min_delay_after_throttle=s.settings.retry_min_delay_after_throttle,
                        disable_after_ms=int(s.settings.endpoint_disable_after * 1000),
                    )
                    break
                except StorageError as exc:
                    # The lease keeps these claimed; if we never record them they are re-sent
                    # (same webhook-id) after it expires. Keep trying meanwhile.
                    log.error("dispatcher: could not record attempts, retrying: %s", exc)
                    await asyncio.sleep(1)
            s.metrics.count_recorded(recorded)
            s.signals.deliveries.notify()

    async def claim_and_send(self) -> int:
        s = self.s
        now = s.clock()
        # Long enough for any attempt to finish and be recorded; short enough that a killed
        # worker's claims are sent again soon.
        lease_ms = int((2 * s.settings.delivery_timeout + 5) * 1000)
        # Durable: this commit is what the webhook about to be sent stands on.
        wanted = min(self.capacity, CLAIM_BATCH)
        due = await s.db.run(lambda tx: tx.claim_due_deliveries(now, now + lease_ms, wanted))
        self._drained = len(due) < wanted
        held_back = []
        for item in due:
            wait = self._limits.admit(
                item.webhook_id,
                rate=item.rate_limit_per_s,
                concurrency=item.max_concurrency,
                now=now / 1000,
            )
            if wait > 0:
                held_back.append((item.id, now + max(1, int(wait * 1000))))
                continue
            self._in_flight += 1
            task = asyncio.create_task(self._send(item))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if held_back:
            await s.db.relaxed.run(lambda tx: tx.defer_deliveries(held_back, now))
        return len(due) - len(held_back)

    async def _idle_wait(self) -> None:
        s = self.s
        next_at = await s.db.read(lambda tx: tx.next_due_at())
        timeout = s.settings.idle_poll_seconds
        if next_at is not None:
            timeout = min(timeout, max(0.0, (next_at - s.clock()) / 1000))
        await s.signals.deliveries.wait(timeout)

    async def run(self) -> None:
        recorder = asyncio.create_task(self._record_forever())
        try:
            while True:
                self.s.beat("dispatcher")
                if self.capacity <= 0:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    continue
                try:
                    claimed = await self.claim_and_send()
                except StorageError as exc:
                    log.error("dispatcher: database unavailable, retrying in 1 s: %s", exc)
                    await asyncio.sleep(1)
                    continue
                if claimed == 0 or self._drained:
                    await self._idle_wait()
        finally:
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder


class Janitor:
    """Applies the retention window: a few bounded batches every `INTERVAL_S`."""

    INTERVAL_S = 3600.0
    FIRST_RUN_S = 60.0

    def __init__(self, services: Services) -> None:
        self.s = services

    async def run_once(self) -> int:
        days = self.s.settings.retention_days
        if days <= 0:
            return 0
        before = self.s.clock() - int(days * 86_400_000)
        removed = 0
        while True:
            cleaned = await self.s.db.relaxed.run_retrying(clean_once, before_ms=before)
            removed += cleaned.total
            if cleaned.total == 0:
                break
            await asyncio.sleep(0)  # let the hot path in between batches
        if removed:
            log.info("retention: removed %d rows older than %g days", removed, days)
        return removed

    async def run(self) -> None:
        await asyncio.sleep(self.FIRST_RUN_S)
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention: cleanup failed, trying again next hour")
            await asyncio.sleep(self.INTERVAL_S)


def _wake_on_notify(services: Services, loop: asyncio.AbstractEventLoop) -> Callable[[str], None]:
    signals = services.signals
    targets = {
        "notifications": [signals.notifications],
        "profiles": [signals.profiles],
        "deliveries": [signals.deliveries],
    }
    everything = [signals.notifications, signals.profiles, signals.deliveries]

    def on_notify(what: str) -> None:
        for signal in targets.get(what, everything):
            loop.call_soon_threadsafe(signal.notify)

    return on_notify


async def run_workers(services: Services, *, watch_other_processes: bool = False) -> None:
    """Run all three loops until cancelled. Other processes' writes wake them too: always on
    PostgreSQL (NOTIFY), and on SQLite with `watch_other_processes` (a `convohook worker` beside
    a `serve --no-worker`; in `serve` itself every write is this process's own and wakes the
    loops directly, so watching would only add empty rounds)."""
    storage = services.db.storage
    listen = getattr(storage, "listen", None)
    if listen is None and watch_other_processes:
        listen = getattr(storage, "watch_commits", None)
    stop = threading.Event()
    if listen is not None:
        on_notify = _wake_on_notify(services, asyncio.get_running_loop())
        threading.Thread(
            target=listen, args=(on_notify, stop), name="convohook-listen", daemon=True
        ).start()
    enricher = ProfileEnricher(services)
    loops = [
        Processor(services, handoff=enricher).run(),
        enricher.run(),
        Dispatcher(services).run(),
        Janitor(services).run(),
    ]
    try:
        await asyncio.gather(*loops)
    finally:
        stop.set()
        await enricher.cancel_handed()
