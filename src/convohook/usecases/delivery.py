"""Recording delivery attempts and deciding what comes next (the policy itself is pure)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from convohook.delivery.result import AttemptResult
from convohook.delivery.retry import (
    AttemptOutcome,
    DisableWebhook,
    GiveUp,
    RetryAt,
    Succeeded,
    decide_next,
    parse_retry_after,
)
from convohook.domain.model import Attempt, Delivery, DueDelivery
from convohook.storage.at_commit import AtCommit
from convohook.storage.base import Transaction
from convohook.usecases.errors import NotFound
from convohook.usecases.ops import DELIVERY_EXHAUSTED, OPS_EVENTS, WEBHOOK_DISABLED, emit_ops_event


@dataclass(frozen=True, slots=True)
class SentAttempt:
    due: DueDelivery
    result: AttemptResult
    attempted_at_ms: int
    log_only: bool = False  # an attempt that was retried at once: logged, decides nothing
    request_headers: dict[str, str] | None = None  # as sent, credentials masked
    request_body: bytes | None = None  # what was sent, when it differs from the stored payload


@dataclass(frozen=True)
class Recorded:
    """What a batch of attempts did to its deliveries (for `/metrics`)."""

    retries: int = 0  # will be tried again
    succeeded: int = 0
    failed: int = 0  # the schedule ran out, or the endpoint answered 410 Gone
    webhooks_disabled: int = 0  # by a 410, or by failing for the health window
    # Something may have become due that the dispatcher's last claim did not see: a retry,
    # the next delivery of a FIFO webhook's conversation, an operations event. Not after
    # plain successes, the common case: waking then only ran an empty claim.
    more_due: bool = True


def record_attempts(
    tx: Transaction,
    sent: Sequence[SentAttempt],
    *,
    now_ms: int,
    schedule: Sequence[float],
    rng: random.Random,
    min_delay_after_throttle: float = 0.0,
    disable_after_ms: int = 5 * 86_400_000,
) -> Recorded:
    """Log every attempt and move each delivery on; returns what became of them.

    Endpoint health: a webhook whose attempts have failed without a single success for
    `disable_after_ms` is disabled (its deliveries wait; re-enable it and recover them)."""
    retries = succeeded = failed = disabled = 0
    unblocking = False  # a FIFO webhook's delivery settled: its conversation's next is due
    healthy: set[str] = set()  # marked healthy in this batch, with no failure since
    for item in sent:
        due, result = item.due, item.result
        number = due.attempt_count + 1
        tx.record_attempt(
            due.id,
            Attempt(
                attempt_number=number,
                attempted_at_ms=item.attempted_at_ms,
                url=due.url,
                status_code=result.status_code,
                response_body=result.response_body,
                duration_ms=result.duration_ms,
                error=result.error,
                error_class=result.error_class,
                request_headers=item.request_headers,
                request_body=item.request_body.decode(errors="replace")
                if item.request_body is not None
                else None,
            ),
        )
        if item.log_only:
            continue
        now_s = now_ms / 1000
        outcome = AttemptOutcome(
            status_code=result.status_code,
            error_class=result.error_class,
            retry_after=parse_retry_after(result.retry_after, now_s),
        )
        step = decide_next(
            number, outcome, schedule, now_s, rng, min_delay_after_throttle=min_delay_after_throttle
        )
        unblocking = unblocking or due.fifo
        heals: str | None = None  # the webhook whose failure streak this success ends
        if isinstance(step, Succeeded):
            if due.webhook_id not in healthy:  # once per webhook and batch, not per delivery
                heals = due.webhook_id
                healthy.add(due.webhook_id)
        elif _failing_too_long(tx, due.webhook_id, healthy, now_ms, disable_after_ms):
            disabled += 1
            days = disable_after_ms / 86_400_000
            _disable(
                tx,
                due,
                f"every attempt failed for {days:g} days: disabled; fix the endpoint, re-enable "
                "the webhook (new openings wait for it meanwhile) and recover its failed "
                "deliveries",
                now_ms,
                # The endpoint is down, not refused: openings keep coming and must not be lost.
                keep_queue=True,
            )
        status, next_at, last_error = "failed", None, result.error
        if isinstance(step, Succeeded):
            status = "succeeded"
            succeeded += 1
        elif isinstance(step, RetryAt):
            status, next_at = "pending", int(step.at * 1000)
            retries += 1
        elif isinstance(step, DisableWebhook):
            _disable(tx, due, step.reason, now_ms)
            last_error = step.reason
            failed += 1
            disabled += 1
        else:
            assert isinstance(step, GiveUp)
            last_error = step.reason
            failed += 1
            if due.event_type not in OPS_EVENTS:
                emit_ops_event(
                    tx,
                    org_id=due.org_id,
                    event_type=DELIVERY_EXHAUSTED,
                    data={
                        "deliveryId": due.id,
                        "webhookId": due.webhook_id,
                        "url": due.url,
                        "eventType": due.event_type,
                        "attempts": number,
                        "lastError": step.reason,
                    },
                    now_ms=now_ms,
                )
        tx.update_delivery(
            due.id,
            status=status,
            attempt_count=number,
            next_attempt_at_ms=next_at,
            last_status_code=result.status_code,
            last_error=last_error,
            now_ms=now_ms,
            heals_webhook=heals,
        )
    more_due = unblocking or retries + failed + disabled > 0
    return Recorded(retries, succeeded, failed, disabled, more_due)


def _failing_too_long(
    tx: Transaction, webhook_id: str, healthy: set[str], now_ms: int, disable_after_ms: int
) -> bool:
    healthy.discard(webhook_id)  # a later success in the batch must mark it healthy again
    return now_ms - tx.webhook_failing(webhook_id, now_ms) >= disable_after_ms


def _disable(
    tx: Transaction, due: DueDelivery, reason: str, now_ms: int, *, keep_queue: bool = False
) -> None:
    disabled = tx.disable_webhook(due.webhook_id, reason, now_ms, keep_queue=keep_queue)
    if disabled and due.event_type not in OPS_EVENTS:
        emit_ops_event(
            tx,
            org_id=due.org_id,
            event_type=WEBHOOK_DISABLED,
            data={"webhookId": due.webhook_id, "url": due.url, "reason": reason},
            now_ms=now_ms,
        )


def retry_now(tx: Transaction, org_id: str, delivery_id: str, now_ms: int) -> Delivery:
    """Send a delivery again at once, whatever its state (a manual retry after `failed`)."""
    if tx.get_delivery(org_id, delivery_id) is None:
        raise NotFound("delivery", delivery_id)
    tx.reschedule_delivery(delivery_id, now_ms)
    delivery = tx.get_delivery(org_id, delivery_id)
    assert delivery is not None  # read in this transaction a moment ago
    return delivery


def claim_due_deliveries(
    tx: Transaction, now_ms: int, lease_until_ms: int, limit: int
) -> list[DueDelivery]:
    """Deliveries due now, claimed until `lease_until_ms`: if this worker dies, another sends
    them once the lease runs out (same `webhook-id`)."""
    return tx.claim_due_deliveries(now_ms, lease_until_ms, limit)


@dataclass(frozen=True)
class Claimed:
    """A dispatcher round's claim, and what it is to wait for after it."""

    due: list[DueDelivery]
    drained: bool  # fewer were due than asked for: none is left for now
    next_due_at_ms: int | None  # when drained: when the next one is due (None: nothing waits)


def claim_deliveries(
    tx: Transaction, now_ms: int, lease_until_ms: int, limit: int
) -> AtCommit[Claimed]:
    """`claim_due_deliveries`, and when that drained them, when the next one is due, in the same
    transaction: a dispatcher round that ends in a wait is one transaction, not two (at a
    steady trickle of openings, most rounds end so). Read once committed: the transaction's
    last statements."""

    def claimed(found: tuple[list[DueDelivery], int | None]) -> Claimed:
        due, next_due_at_ms = found
        return Claimed(due, len(due) < limit, next_due_at_ms)

    return tx.claim_and_next_due(now_ms, lease_until_ms, limit).map(claimed)


def ready_and_claimed(
    tx: Transaction,
    record: Callable[[Transaction], int],
    *,
    now_ms: int,
    lease_until_ms: int,
    limit: int,
) -> tuple[int, AtCommit[Claimed] | None]:
    """`record` (what makes deliveries ready: profiles looked up), then, if it made any, the
    claim the dispatcher would make on being woken for them, in the same transaction: one
    transaction and one wake-up fewer between a profile and its webhook. `limit` 0 (the
    dispatcher is full): no claim, the dispatcher takes them when it has room. The claim is
    read once committed."""
    ready = record(tx)
    if not ready or limit <= 0:
        return ready, None
    return ready, claim_deliveries(tx, now_ms, lease_until_ms, limit)


def defer_deliveries(tx: Transaction, rows: Sequence[tuple[str, int]], now_ms: int) -> None:
    """Put claimed deliveries back, each due at its time, without counting an attempt (a
    webhook's rate limit held them back)."""
    tx.defer_deliveries(rows, now_ms)


def next_due_at(tx: Transaction) -> int | None:
    """When the next delivery becomes due (a retry, or a lease running out), if any."""
    return tx.next_due_at()
