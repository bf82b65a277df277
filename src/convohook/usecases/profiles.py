"""Completing events that wait for a customer's Instagram profile (DESIGN section 3).

The state machine never waits on Instagram: an opening is recorded at once, and when the profile
is not cached its event waits here. Retryable failures are retried with backoff until the event's
deadline (default 60 s after the opening); then, or at once on a permanent failure, the event is
sent with the best data known: the cached profile if there is one, else the IGSID as username and
display name. Nothing is ever dropped for want of a profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from convohook.domain.model import AwaitingProfile
from convohook.domain.payload import CustomerProfile
from convohook.storage.base import Transaction
from convohook.usecases.events import build_body, cached_profile

MAX_BACKOFF_MS = 15_000


@dataclass(frozen=True, slots=True)
class ProfileResult:
    waiting: AwaitingProfile
    profile: CustomerProfile | None  # None: the lookup failed
    retryable: bool = False
    error: str | None = None


def fallback_profile(waiting: AwaitingProfile) -> tuple[CustomerProfile, bool]:
    """The best profile known without Instagram, and whether it is only the IGSID."""
    cached = cached_profile(waiting.contact)
    if cached is not None:
        return cached, False
    return CustomerProfile(username=waiting.contact.igsid, name=None), True


def backoff_ms(attempts: int) -> int:
    return int(min(500 * 2**attempts, MAX_BACKOFF_MS))


def apply_profile_results(tx: Transaction, results: list[ProfileResult], now_ms: int) -> int:
    """Record lookups; returns how many events became ready to send."""
    ready = 0
    # Read for all at once: one round trip on PostgreSQL, not one per lookup.
    waiting_events = tx.events_awaiting_profiles([r.waiting.contact.id for r in results])
    for result in results:
        waiting = result.waiting
        contact = waiting.contact
        if result.profile is not None:
            profile = result.profile
            tx.set_contact_profile(
                contact.id,
                profile.username,
                profile.name,
                "ok",
                now_ms,
                follower_count=profile.follower_count,
                is_user_follow_business=profile.is_user_follow_business,
                is_verified_user=profile.is_verified_user,
            )
        else:
            attempts = waiting.attempts + 1
            next_at = now_ms + backoff_ms(attempts)
            has_cache = contact.username is not None
            if result.retryable and not has_cache and next_at < waiting.deadline_ms:
                tx.postpone_profile(contact.id, attempts, next_at)
                continue
            profile, is_igsid = fallback_profile(waiting)
            if is_igsid:
                tx.set_contact_profile(contact.id, profile.username, None, "fallback", now_ms)
        for event_id, event_type, details in waiting_events.pop(contact.id, []):
            tx.set_event_payload(
                event_id,
                build_body(
                    event_type,
                    business_handle=waiting.channel_handle,
                    profile=profile,
                    customer_id=contact.customer_id,
                    details=details,
                ),
                now_ms,
            )
            ready += 1
    return ready


def claim_awaiting_profiles(
    tx: Transaction, now_ms: int, lease_until_ms: int, limit: int
) -> list[AwaitingProfile]:
    """Customers whose events wait for their profile, claimed until `lease_until_ms`."""
    return tx.claim_awaiting_profiles(now_ms, lease_until_ms, limit)
