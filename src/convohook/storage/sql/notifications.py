"""Meta's notifications, stored before Meta gets its 200 and processed in order."""

from __future__ import annotations

from collections.abc import Sequence

from convohook.domain.model import (
    StoredNotification,
)
from convohook.storage.sql.base import (
    SQLBase,
)


class NotificationsSQL(SQLBase):
    def insert_notification(self, body: bytes, now_ms: int) -> int:
        row = self._x(
            "INSERT INTO notifications (body, received_at_ms) VALUES (?, ?) RETURNING id",
            (body, now_ms),
        ).fetchone()
        return int(row[0])

    def insert_notifications(self, bodies: Sequence[bytes], now_ms: int) -> None:
        self._insert_many(
            "INSERT INTO notifications (body, received_at_ms) VALUES (?, ?)",
            [(body, now_ms) for body in bodies],
        )

    def pending_notifications(self, limit: int) -> list[StoredNotification]:
        rows = self._x(
            "SELECT id, body, received_at_ms FROM notifications WHERE status = 'pending' "
            "ORDER BY id LIMIT ?" + self.SKIP_LOCKED,
            (limit,),
        ).fetchall()
        return [StoredNotification(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def mark_notifications_processed(
        self, ids: Sequence[int], now_ms: int, error: str | None = None
    ) -> None:
        # A notification we could not process is kept as 'failed' with its error, never dropped.
        self._many(
            "UPDATE notifications SET status = ?, processed_at_ms = ?, error = ? WHERE id = ?",
            [("failed" if error else "processed", now_ms, error, i) for i in ids],
        )
