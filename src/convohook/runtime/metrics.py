"""Prometheus metrics, one registry per running service (no global registry)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


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

    def render(self) -> bytes:
        return generate_latest(self.registry)


def status_class(status_code: int | None, error_class: str | None) -> str:
    if status_code is None:
        return error_class or "error"
    return f"{status_code // 100}xx"
