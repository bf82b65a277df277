"""The dispatcher: claims due deliveries under a lease, sends them concurrently within each
webhook's limits, and records the attempts in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from convohook.delivery.limits import WebhookLimits
from convohook.delivery.request import OutgoingRequest, build_request
from convohook.delivery.result import AttemptResult
from convohook.domain.model import DueDelivery
from convohook.outbound.webhooks import USER_AGENT, send
from convohook.runtime.metrics import status_class
from convohook.runtime.services import Services
from convohook.runtime.workers.batching import next_batch
from convohook.storage.errors import StorageError
from convohook.usecases.delivery import (
    Claimed,
    SentAttempt,
    claim_deliveries,
    defer_deliveries,
    next_due_at,
    record_attempts,
)

log = logging.getLogger(__name__)

CLAIM_BATCH = 100


def delivery_lease_ms(services: Services) -> int:
    """How long a claimed delivery is this worker's: long enough for any attempt to finish
    and be recorded; short enough that a killed worker's claims are sent again soon."""
    return int((2 * services.settings.delivery_timeout + 5) * 1000)


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
        # When the next delivery is due, as the last claim read it (in a 1-tuple: None inside
        # means nothing waits); None when unknown, and read before waiting.
        self._next_due: tuple[int | None] | None = None

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
            batch = await next_batch(self._results, 500)
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
            if recorded.more_due:
                s.signals.deliveries.notify()

    async def claim_and_send(self) -> int:
        s = self.s
        now = s.clock()
        # Durable: this commit is what the webhook about to be sent stands on.
        claimed = (
            await s.db.run(claim_deliveries, now, now + delivery_lease_ms(s), self.claim_limit())
        ).get()
        self._drained = claimed.drained
        self._next_due = (claimed.next_due_at_ms,) if claimed.drained else None
        sent, deferred = await self._send_due(claimed.due, now)
        if deferred:
            self._next_due = None  # moved: read it again
        return sent

    def claim_limit(self) -> int:
        return min(self.capacity, CLAIM_BATCH)

    async def take(self, claimed: Claimed, now: int) -> None:
        """Send deliveries another worker claimed for this one in its own transaction (the
        profile enricher, as its lookups made them ready), as if this one had claimed them.
        It claimed at most `claim_limit()`; a claim of the dispatcher's own at the same time
        can take the attempts in flight past `delivery_concurrency` by that much, briefly
        (each webhook's own concurrency limit holds: `_send_due` admits by it)."""
        _, deferred = await self._send_due(claimed.due, now)
        if deferred or not claimed.drained:
            # More were due than it took, or some wait for their webhook's limits: the
            # dispatcher's own round finds them, or learns when to look again.
            self.s.signals.deliveries.notify()

    async def _send_due(self, due: list[DueDelivery], now: int) -> tuple[int, int]:
        """Start an attempt of each claimed delivery its webhook's limits admit now, and put
        the others back for later: (started, put back)."""
        s = self.s
        if due:
            # Bots' runs wait for their conversation's webhooks to go out first; costs nothing
            # unless the bot runner waits on it.
            s.signals.webhooks_out.notify()
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
            await s.db.relaxed.run(defer_deliveries, held_back, now)
        return len(due) - len(held_back), len(held_back)

    async def _idle_wait(self) -> None:
        s = self.s
        known, self._next_due = self._next_due, None
        next_at = known[0] if known is not None else await s.db.read(next_due_at)
        await s.signals.deliveries.wait_until(next_at, s.clock(), s.settings.idle_poll_seconds)

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
