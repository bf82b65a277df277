"""Agents (an org's users, seen as whom conversations are assigned to) and round robin's turn."""

from __future__ import annotations

from convohook.domain.model import User
from convohook.storage.sql.base import USER_COLS, SQLBase, user_row


class AgentsSQL(SQLBase):
    def list_agents(self, org_id: str, before: str | None, limit: int) -> list[User]:
        rows = self._x(
            f"SELECT {USER_COLS} FROM users u WHERE u.org_id = ? "
            "AND (CAST(? AS TEXT) IS NULL OR u.id < ?) ORDER BY u.id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return [user_row(r) for r in rows]

    def get_agent(self, org_id: str, agent_id: str) -> User | None:
        row = self._x(
            f"SELECT {USER_COLS} FROM users u WHERE u.org_id = ? AND u.id = ?", (org_id, agent_id)
        ).fetchone()
        return user_row(row) if row else None

    def update_agent(
        self, org_id: str, agent_id: str, *, name: str | None, available: bool | None
    ) -> User | None:
        # One statement, each field kept unless given: a rename and a toggle made at the same
        # moment both apply, neither writes the other's field back as it read it.
        row = self._x(
            "UPDATE users SET name = coalesce(CAST(? AS TEXT), name), "
            "available = coalesce(CAST(? AS BOOLEAN), available) "
            f"WHERE org_id = ? AND id = ? RETURNING {USER_COLS.replace('u.', '')}",
            (name, available, org_id, agent_id),
        ).fetchone()
        return user_row(row) if row else None

    def take_round_robin_turn(self, org_id: str) -> User | None:
        # The cursor row is created once, then locked: a second worker taking a turn meanwhile
        # waits for this transaction and reads the turn it handed out (PostgreSQL, READ
        # COMMITTED re-reads a locked row once it is released; SQLite has one writer anyway).
        self._x(
            "INSERT INTO round_robin_cursors (org_id, last_agent_id) VALUES (?, NULL) "
            "ON CONFLICT (org_id) DO NOTHING",
            (org_id,),
        )
        row = self._x(
            "SELECT last_agent_id FROM round_robin_cursors WHERE org_id = ?" + self.FOR_UPDATE,
            (org_id,),
        ).fetchone()
        last = row[0] if row else None
        # The next available agent after the last one, in id order, wrapping around.
        found = self._x(
            f"SELECT {USER_COLS} FROM users u WHERE u.org_id = ? AND u.available = TRUE "
            "ORDER BY CASE WHEN CAST(? AS TEXT) IS NULL OR u.id > ? THEN 0 ELSE 1 END, u.id "
            "LIMIT 1",
            (org_id, last, last),
        ).fetchone()
        if found is None:
            return None
        agent = user_row(found)
        self._x(
            "UPDATE round_robin_cursors SET last_agent_id = ? WHERE org_id = ?", (agent.id, org_id)
        )
        return agent
