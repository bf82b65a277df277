"""Prometheus metrics, one registry per running service (no global registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from convohook.domain.model import Backlog
from convohook.usecases.delivery import Recorded


def _registry() -> CollectorRegistry:
    return CollectorRegistry(auto_describe=True)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=_registry)

    def __post_init__(self) -> None:
        r = self.registry
        self.notifications = Counter(
            "convohook_notifications_received",
            "Meta notifications received, by outcome",
            ["outcome"],
            registry=r,
        )
        self.openings = Counter(
            "convohook_conversations_opened",
            "Conversations opened, by reason (first_message or reopened)",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "convohook_duplicate_messages", "Messages Meta delivered again (same mid)", registry=r
        )
        self.attempts = Counter(
            "convohook_delivery_attempts",
            "Delivery attempts, by outcome and status class",
            ["outcome", "status_class"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "convohook_delivery_attempt_seconds",
            "Duration of delivery attempts",
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )

        self.deliveries = Counter(
            "convohook_deliveries_finished",
            "Deliveries that reached an end: succeeded, or failed (schedule run out, or 410)",
            ["outcome"],
            registry=r,
        )
        self.webhooks_disabled = Counter(
            "convohook_webhooks_disabled",
            "Webhooks disabled by a 410 or by failing for the health window",
            registry=r,
        )
        self.opened_to_delivered = Histogram(
            "convohook_opened_to_delivered_seconds",
            "From the event (the opening) to its webhook's successful attempt",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 7200, 86400),
        )
        # Read at each scrape (`observe_*`), not kept up to date by the hot path.
        self.backlog = Gauge(
            "convohook_backlog",
            "Work waiting: notifications not processed, deliveries due now, events waiting for "
            "a profile",
            ["queue"],
            registry=r,
        )
        self.oldest_due = Gauge(
            "convohook_oldest_due_delivery_seconds",
            "How long the longest-waiting due delivery has been due (0: none)",
            registry=r,
        )
        self.bot_runs = Counter(
            "convohook_bot_runs",
            "Bot Studio runs carried out, by status: done (conditions held, actions ran), "
            "skipped (a condition did not hold, or the bot was disabled), failed",
            ["status"],
            registry=r,
        )
        self.bot_actions = Counter(
            "convohook_bot_actions",
            "Actions of bots' runs, by type and outcome (done, skipped, failed)",
            ["type", "outcome"],
            registry=r,
        )
        self.since_beat = Gauge(
            "convohook_worker_seconds_since_beat",
            "Seconds since each worker loop of this process last came round",
            ["loop"],
            registry=r,
        )

    def count_recorded(self, recorded: Recorded) -> None:
        self.deliveries.labels("succeeded").inc(recorded.succeeded)
        self.deliveries.labels("failed").inc(recorded.failed)
        self.webhooks_disabled.inc(recorded.webhooks_disabled)

    def observe_backlog(self, backlog: Backlog, now_ms: int) -> None:
        self.backlog.labels("notifications").set(backlog.notifications)
        self.backlog.labels("due_deliveries").set(backlog.due_deliveries)
        self.backlog.labels("awaiting_profile").set(backlog.awaiting_profile)
        oldest = backlog.oldest_due_ms
        self.oldest_due.set(0 if oldest is None else max(0, now_ms - oldest) / 1000)

    def observe_beats(self, beats: dict[str, float], now: float) -> None:
        for loop, at in beats.items():
            self.since_beat.labels(loop).set(max(0.0, now - at))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def status_class(status_code: int | None, error_class: str | None) -> str:
    if status_code is None:
        return error_class or "error"
    return f"{status_code // 100}xx"
