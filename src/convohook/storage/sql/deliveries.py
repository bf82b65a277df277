"""Deliveries: claims under a lease, the append-only attempt log, the delivery log's reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from convohook.domain.model import (
    Attempt,
    Delivery,
    DueDelivery,
)
from convohook.storage.at_commit import AtCommit
from convohook.storage.sealing import Sealer
from convohook.storage.sql.base import (
    PREVIOUS_SECRET,
    WEBHOOK_AUTH,
    WEBHOOK_SECRET,
    Cursor,
    SQLBase,
)
from convohook.storage.sql.webhooks import WEBHOOK_HEALED

# An attempt's outcome; parameters: status, attempt count, next attempt, status code, error,
# now, the delivery's id.
UPDATE_DELIVERY = (
    "UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at_ms = ?, "
    "lease_until_ms = NULL, last_status_code = ?, last_error = ?, updated_at_ms = ? WHERE id = ?"
)

# With strict ordering a delivery waits while an earlier one of the same conversation to the same
# webhook is still pending or being sent (delivery ids are time-ordered).
FIFO_READY = (
    " AND (w.ordering <> 'fifo' OR NOT EXISTS ("
    " SELECT 1 FROM deliveries p JOIN events pe ON pe.id = p.event_id"
    " WHERE p.webhook_id = d.webhook_id AND pe.conversation_id = e.conversation_id"
    " AND p.status IN ('pending', 'sending') AND p.id < d.id))"
)


# A claimed delivery with what sending it takes; `{deliveries}`: the table, or the claim's own
# rows on PostgreSQL (postgres._CLAIM). One parameter: now, for the rotation's EXISTS.
def due_select(previous_secrets: str) -> str:
    """`previous_secrets`: the 25th column, about the webhook's previous secrets still valid
    (a rotation), with one parameter: now."""
    return (
        "SELECT d.id, d.webhook_id, w.url, w.secret, e.payload, d.attempt_count, e.id, e.type, "
        "e.created_at_ms, e.reason, e.conversation_id, c.igsid, e.first_message_text, "
        "e.first_message_at_ms, w.format, w.headers, w.auth_type, w.auth_value, w.timeout_s, "
        "w.rate_limit_per_s, w.max_concurrency, d.org_id, e.details, w.ordering, "
        + previous_secrets
        + " FROM {deliveries} d JOIN events e ON e.id = d.event_id "
        "JOIN webhooks w ON w.id = d.webhook_id LEFT JOIN contacts c ON c.id = e.contact_id"
    )


# Whether a previous secret is still valid: only then are they read, one more statement, where
# a claim outside a rotation costs none.
DUE_SELECT = due_select(
    "EXISTS (SELECT 1 FROM webhook_secrets s WHERE s.webhook_id = w.id AND s.expires_at_ms > ?)"
)

# When the next delivery becomes due: the first pending one that may be sent, or the first
# lease to run out. The first sendable delivery in `deliveries_due`'s order, not `min()` over
# all of them: a `min()` over a join is computed from every pending delivery (PostgreSQL's plan
# read them all, each with its event, 7,500 buffers and 5 to 25 ms per call in a backlog),
# where the first in order is one index step away. `IS NOT NULL` leaves out, whatever the
# plan, what waits for a profile (not scheduled yet: `OutboxSQL.insert_deliveries`).
NEXT_DUE_AT = (
    "SELECT min(t) FROM ("
    " SELECT t FROM (SELECT d.next_attempt_at_ms AS t FROM deliveries d"
    " JOIN events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id"
    " WHERE d.status = 'pending' AND d.next_attempt_at_ms IS NOT NULL"
    " AND e.payload IS NOT NULL AND w.enabled = TRUE"
    + FIFO_READY
    + " ORDER BY d.next_attempt_at_ms LIMIT 1) AS sendable"
    " UNION ALL"
    " SELECT min(lease_until_ms) FROM deliveries WHERE status = 'sending') AS due"
)


def next_due_from(cursor: Cursor) -> int | None:
    row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None


_DELIVERY_COLS = (
    "d.id, d.org_id, d.event_id, e.type, d.webhook_id, d.status, d.attempt_count, "
    "d.next_attempt_at_ms, d.last_status_code, d.last_error, d.created_at_ms, d.updated_at_ms, "
    "e.payload"
)


def due_row(r: Sequence[Any], previous_secrets: tuple[str, ...], sealer: Sealer) -> DueDelivery:
    return DueDelivery(
        id=str(r[0]),
        webhook_id=str(r[1]),
        url=str(r[2]),
        secret=sealer.open(WEBHOOK_SECRET, str(r[3])),
        payload=bytes(r[4]),
        attempt_count=int(r[5]),
        event_id=str(r[6]),
        event_type=str(r[7]),
        event_created_at_ms=int(r[8]),
        reason=r[9],
        conversation_id=r[10],
        igsid=r[11],
        first_message_text=r[12],
        first_message_at_ms=r[13],
        format=str(r[14]),
        headers=orjson.loads(r[15]),
        auth_type=r[16],
        auth_value=sealer.open_optional(WEBHOOK_AUTH, r[17]),
        timeout_s=r[18],
        previous_secrets=previous_secrets,
        rate_limit_per_s=r[19],
        max_concurrency=r[20],
        org_id=str(r[21]),
        details=r[22],
        fifo=r[23] == "fifo",
    )


def _delivery(row: Sequence[object], attempts: tuple[Attempt, ...] = ()) -> Delivery:
    return Delivery(*row, attempts=attempts)  # type: ignore[arg-type,misc]


class DeliveriesSQL(SQLBase):
    def _claim_ids(self, now_ms: int, lease_until_ms: int, limit: int) -> list[str]:
        # Due = pending and scheduled, or sending under a lease that expired (its worker died).
        rows = self._x(
            "UPDATE deliveries SET status = 'sending', lease_until_ms = ? WHERE id IN ("
            " SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id"
            " JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'pending' AND d.next_attempt_at_ms <= ?"
            " AND e.payload IS NOT NULL AND w.enabled = TRUE" + FIFO_READY + " UNION ALL"
            " SELECT d.id FROM deliveries d WHERE d.status = 'sending' AND d.lease_until_ms <= ?"
            " LIMIT ?) RETURNING id",
            (lease_until_ms, now_ms, now_ms, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def claim_due_deliveries(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[DueDelivery]:
        ids = self._claim_ids(now_ms, lease_until_ms, limit)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        details = self._x(
            DUE_SELECT.format(deliveries="deliveries") + f" WHERE d.id IN ({marks}) ORDER BY d.id",
            [now_ms, *ids],
        ).fetchall()
        return self._due_deliveries(details, now_ms)

    def _due_deliveries(self, details: Sequence[Sequence[Any]], now_ms: int) -> list[DueDelivery]:
        """`DUE_SELECT`'s rows as deliveries, with the webhooks' previous secrets where a
        rotation keeps one valid."""
        rotating = sorted({str(r[1]) for r in details if r[24]})
        previous = self._previous_secrets(rotating, now_ms)
        return [due_row(r, tuple(previous.get(str(r[1]), ())), self._sealer) for r in details]

    def claim_and_next_due(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> AtCommit[tuple[list[DueDelivery], int | None]]:
        due = self.claim_due_deliveries(now_ms, lease_until_ms, limit)
        return AtCommit.now((due, self.next_due_at() if len(due) < limit else None))

    def _previous_secrets(self, webhook_ids: Sequence[str], now_ms: int) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if webhook_ids:
            marks = ",".join("?" * len(webhook_ids))
            for webhook_id, secret in self._x(
                "SELECT webhook_id, secret FROM webhook_secrets "
                f"WHERE webhook_id IN ({marks}) AND expires_at_ms > ? ORDER BY created_at_ms DESC",
                [*webhook_ids, now_ms],
            ).fetchall():
                found.setdefault(str(webhook_id), []).append(
                    self._sealer.open(PREVIOUS_SECRET, str(secret))
                )
        return found

    def next_due_at(self) -> int | None:
        return next_due_from(self._x(NEXT_DUE_AT))

    def record_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        self._insert(
            "INSERT INTO attempts (delivery_id, attempt_number, attempted_at_ms, url, "
            "status_code, response_body, duration_ms, error, error_class, request_headers, "
            "request_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery_id,
                attempt.attempt_number,
                attempt.attempted_at_ms,
                attempt.url,
                attempt.status_code,
                attempt.response_body,
                attempt.duration_ms,
                attempt.error,
                attempt.error_class,
                orjson.dumps(attempt.request_headers).decode()
                if attempt.request_headers is not None
                else None,
                attempt.request_body,
            ),
        )

    def update_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        attempt_count: int,
        next_attempt_at_ms: int | None,
        last_status_code: int | None,
        last_error: str | None,
        now_ms: int,
        heals_webhook: str | None = None,
    ) -> None:
        self._x(
            UPDATE_DELIVERY,
            (
                status,
                attempt_count,
                next_attempt_at_ms,
                last_status_code,
                last_error,
                now_ms,
                delivery_id,
            ),
        )
        if heals_webhook is not None:
            self._x(WEBHOOK_HEALED, (heals_webhook,))

    def _attempts(self, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        marks = ",".join("?" * len(delivery_ids))
        rows = self._x(
            "SELECT delivery_id, attempt_number, attempted_at_ms, url, status_code, "
            "response_body, duration_ms, error, error_class, request_headers, request_body "
            f"FROM attempts WHERE delivery_id IN ({marks}) ORDER BY id",
            delivery_ids,
        ).fetchall()
        for r in rows:
            found[str(r[0])].append(
                Attempt(
                    attempt_number=r[1],
                    attempted_at_ms=r[2],
                    url=r[3],
                    status_code=r[4],
                    response_body=r[5],
                    duration_ms=r[6],
                    error=r[7],
                    error_class=r[8],
                    request_headers=orjson.loads(r[9]) if r[9] is not None else None,
                    request_body=r[10],
                )
            )
        return found

    def get_delivery(self, org_id: str, delivery_id: str) -> Delivery | None:
        row = self._x(
            f"SELECT {_DELIVERY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.org_id = ? AND d.id = ?",
            (org_id, delivery_id),
        ).fetchone()
        if not row:
            return None
        return _delivery(row, tuple(self._attempts([delivery_id])[delivery_id]))

    def list_deliveries(
        self, org_id: str, webhook_id: str, before: str | None, limit: int
    ) -> list[Delivery]:
        rows = self._x(
            f"SELECT {_DELIVERY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.org_id = ? AND d.webhook_id = ? AND (CAST(? AS TEXT) IS NULL OR d.id < ?) "
            "ORDER BY d.id DESC LIMIT ?",
            (org_id, webhook_id, before, before, limit),
        ).fetchall()
        attempts = self._attempts([str(r[0]) for r in rows])
        return [_delivery(r, tuple(attempts[str(r[0])])) for r in rows]

    def defer_deliveries(self, rows: Sequence[tuple[str, int]], now_ms: int) -> None:
        """Put claimed deliveries back, due later, without counting an attempt (rate limits)."""
        self._many(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, "
            "lease_until_ms = NULL, updated_at_ms = ? WHERE id = ? AND status = 'sending'",
            [(next_at, now_ms, delivery_id) for delivery_id, next_at in rows],
        )

    def reschedule_delivery(self, delivery_id: str, now_ms: int) -> None:
        self._x(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, "
            "lease_until_ms = NULL, updated_at_ms = ? WHERE id = ?",
            (now_ms, now_ms, delivery_id),
        )

    def delivery_counts(self, org_id: str) -> dict[str, tuple[int, int]]:
        """Per webhook: (delivered, failing) where failing = failed, or pending after a try."""
        rows = self._x(
            "SELECT webhook_id,"
            " sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status = 'failed' OR (status = 'pending' AND attempt_count > 0)"
            " THEN 1 ELSE 0 END)"
            " FROM deliveries WHERE org_id = ? GROUP BY webhook_id",
            (org_id,),
        ).fetchall()
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
