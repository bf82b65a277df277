"""Upkeep: the schema version, the backlog for /metrics, secrets at rest, retention."""

from __future__ import annotations

from convohook.domain.model import (
    Backlog,
)
from convohook.storage.sql.base import (
    SECRET_COLUMNS,
    SQLBase,
)


class UpkeepSQL(SQLBase):
    def applied_migrations(self) -> set[int]:
        return {int(r[0]) for r in self._x("SELECT version FROM schema_migrations").fetchall()}

    def backlog(self, now_ms: int) -> Backlog:
        """What waits: for `/metrics`, by the partial indexes that make each count cheap."""
        [pending] = self._x(
            "SELECT count(*) FROM notifications WHERE status = 'pending'"
        ).fetchone()
        due, oldest = self._x(
            "SELECT count(*), min(next_attempt_at_ms) FROM deliveries "
            "WHERE status = 'pending' AND next_attempt_at_ms <= ?",
            (now_ms,),
        ).fetchone()
        [profiles] = self._x("SELECT count(*) FROM events WHERE payload IS NULL").fetchone()
        return Backlog(
            notifications=int(pending),
            due_deliveries=int(due),
            oldest_due_ms=None if oldest is None else int(oldest),
            awaiting_profile=int(profiles),
        )

    def secrets_at_rest(self) -> list[tuple[str, str, str]]:
        """Every stored secret as (column, row id, value as stored, sealed or not)."""
        found: list[tuple[str, str, str]] = []
        for column, (table, key) in SECRET_COLUMNS.items():
            name = column.split(".")[1]
            rows = self._x(
                f"SELECT {key}, {name} FROM {table} WHERE {name} IS NOT NULL ORDER BY {key}"
            ).fetchall()
            found.extend((column, str(row_id), str(value)) for row_id, value in rows)
        return found

    def reseal_secret(self, column: str, row_id: str, stored: str, value: str) -> bool:
        """Replace a secret's stored form, if it is still `stored` (a concurrent change wins)."""
        table, key = SECRET_COLUMNS[column]
        name = column.split(".")[1]
        cur = self._x(
            f"UPDATE {table} SET {name} = ? WHERE {key} = ? AND {name} = ?",
            (self._sealer.seal(column, value), row_id, stored),
        )
        return cur.rowcount > 0

    def delete_finished_deliveries(self, before_ms: int, limit: int) -> int:
        ids = [
            str(r[0])
            for r in self._x(
                "SELECT id FROM deliveries WHERE status IN ('succeeded', 'failed') "
                "AND updated_at_ms < ? ORDER BY updated_at_ms LIMIT ?",
                (before_ms, limit),
            ).fetchall()
        ]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        self._x(f"DELETE FROM attempts WHERE delivery_id IN ({marks})", ids)
        return int(self._x(f"DELETE FROM deliveries WHERE id IN ({marks})", ids).rowcount)

    def delete_orphan_events(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
                "WHERE e.created_at_ms < ? AND e.payload IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    def delete_processed_notifications(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                "WHERE status <> 'pending' AND received_at_ms < ? ORDER BY id LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    def delete_finished_bot_runs(self, before_ms: int, limit: int) -> int:
        # Oldest first along the primary key: the old runs are the ones to go.
        return int(
            self._x(
                "DELETE FROM bot_runs WHERE seq IN (SELECT seq FROM bot_runs "
                "WHERE status <> 'pending' AND created_at_ms < ? ORDER BY seq LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    def delete_captures(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM captures WHERE id IN (SELECT id FROM captures "
                "WHERE received_at_ms < ? ORDER BY id LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )
