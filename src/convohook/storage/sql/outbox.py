"""The outbox: events, their deliveries as written, and events waiting for a profile."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from convohook.domain.model import (
    AwaitingProfile,
)
from convohook.storage.sql.base import (
    CHANNEL_TOKEN,
    CONTACT_COLS,
    CONTACT_WIDTH,
    SQLBase,
    chunks,
    contact_row,
    placeholders,
)


class OutboxSQL(SQLBase):
    def insert_event(
        self,
        *,
        event_id: str,
        org_id: str,
        channel_id: str,
        event_type: str,
        conversation_id: str,
        contact_id: str,
        reason: str | None,
        payload: bytes | None,
        profile_deadline_ms: int,
        first_message_text: str | None,
        first_message_at_ms: int | None,
        now_ms: int,
        profile_claimed_until_ms: int = 0,
        details: str | None = None,
    ) -> None:
        self._insert(
            "INSERT INTO events (id, org_id, channel_id, type, conversation_id, contact_id, "
            "reason, payload, profile_deadline_ms, first_message_text, first_message_at_ms, "
            "created_at_ms, profile_next_at_ms, details) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                org_id,
                channel_id,
                event_type,
                conversation_id,
                contact_id,
                reason,
                payload,
                profile_deadline_ms,
                first_message_text,
                first_message_at_ms,
                now_ms,
                profile_claimed_until_ms,
                details,
            ),
        )

    def insert_deliveries(
        self,
        rows: Iterable[tuple[str, str]],
        event_id: str,
        org_id: str,
        now_ms: int,
        ready: bool = True,
    ) -> None:
        """Due now if `ready`; otherwise (an event waiting for its customer's profile) not
        scheduled at all until the body is built (`set_event_payload`). A claim's range over
        `deliveries_due` then holds what can be sent, not every opening whose profile is still
        being looked up: a backlog of thousands when the Graph API is slow, which every claim
        and every next due time walked through and passed over, row by row, each with its
        event (docs/performance.md)."""
        due = now_ms if ready else None
        self._insert_many(
            "INSERT INTO deliveries (id, org_id, event_id, webhook_id, status, "
            "next_attempt_at_ms, created_at_ms, updated_at_ms) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            [
                (delivery_id, org_id, event_id, webhook_id, due, now_ms, now_ms)
                for delivery_id, webhook_id in rows
            ],
        )

    def claim_awaiting_profiles(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[AwaitingProfile]:
        """Contacts whose events wait for a profile, claimed until `lease_until_ms` so that other
        workers look up other customers meanwhile (and take these over if this one dies)."""
        claimed = self._x(
            "UPDATE events SET profile_next_at_ms = ? WHERE id IN ("
            " SELECT id FROM events WHERE payload IS NULL AND profile_next_at_ms <= ?"
            " ORDER BY profile_next_at_ms LIMIT ?" + self.SKIP_LOCKED + ") RETURNING contact_id",
            (lease_until_ms, now_ms, limit),
        ).fetchall()
        contact_ids = sorted({str(r[0]) for r in claimed})
        if not contact_ids:
            return []
        marks = ",".join("?" * len(contact_ids))
        rows = self._x(
            f"SELECT {CONTACT_COLS}, ch.handle, ch.access_token, max(e.profile_attempts), "
            "min(e.profile_deadline_ms), count(*) "
            "FROM events e JOIN contacts c ON c.id = e.contact_id "
            "JOIN channels ch ON ch.id = e.channel_id "
            f"WHERE e.payload IS NULL AND e.contact_id IN ({marks}) "
            "GROUP BY c.id, ch.handle, ch.access_token",
            contact_ids,
        ).fetchall()
        return [
            AwaitingProfile(
                contact=contact_row(r[:CONTACT_WIDTH]),
                channel_handle=str(r[CONTACT_WIDTH]),
                access_token=self._sealer.open(CHANNEL_TOKEN, str(r[CONTACT_WIDTH + 1])),
                attempts=int(r[CONTACT_WIDTH + 2]),
                deadline_ms=int(r[CONTACT_WIDTH + 3]),
                events=int(r[CONTACT_WIDTH + 4]),
            )
            for r in rows
        ]

    def events_awaiting_profiles(
        self, contact_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        found: dict[str, list[tuple[str, str, str | None]]] = {}
        cursors = [
            self._x(
                "SELECT contact_id, id, type, details FROM events "
                f"WHERE contact_id IN ({placeholders(part)}) AND payload IS NULL ORDER BY id",
                part,
            )
            for part in chunks(sorted(set(contact_ids)))
        ]
        for cursor in cursors:
            for contact_id, event_id, event_type, details in cursor.fetchall():
                found.setdefault(str(contact_id), []).append(
                    (str(event_id), str(event_type), details)
                )
        return found

    def set_event_payload(self, event_id: str, payload: bytes, now_ms: int) -> None:
        """The body of an event that waited for its profile, and its deliveries due now."""
        self._x(
            "UPDATE events SET payload = ? WHERE id = ? AND " + self.PAYLOAD_UNSET,
            (payload, event_id),
        )
        # By the event alone, through the (event_id, webhook_id) key: nothing can have been
        # attempted before the body existed, so its deliveries are all pending. A condition on
        # status or next_attempt_at_ms would let a plan take a partial index for it instead
        # (`deliveries_due`, `deliveries_open_by_webhook`) and walk every delivery waiting for
        # a profile (seen on PostgreSQL: tests/integration/test_postgres_plans.py).
        self._x(
            "UPDATE deliveries SET next_attempt_at_ms = coalesce(next_attempt_at_ms, ?) "
            "WHERE event_id = ?",
            (now_ms, event_id),
        )

    def postpone_profile(self, contact_id: str, attempts: int, next_at_ms: int) -> None:
        self._x(
            "UPDATE events SET profile_attempts = ?, profile_next_at_ms = ? "
            "WHERE contact_id = ? AND payload IS NULL",
            (attempts, next_at_ms, contact_id),
        )
