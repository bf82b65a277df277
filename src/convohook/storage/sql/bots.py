"""Capture bots and what their URLs received."""

from __future__ import annotations

import orjson

from convohook.domain.model import (
    Bot,
    Capture,
)
from convohook.storage.sql.base import (
    SQLBase,
)


class BotsSQL(SQLBase):
    def insert_bot(self, bot: Bot) -> None:
        self._x(
            "INSERT INTO bots (id, org_id, name, trigger, token, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (bot.id, bot.org_id, bot.name, bot.trigger, bot.token, bot.created_at_ms),
        )

    def get_bot(self, org_id: str, bot_id: str) -> Bot | None:
        row = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots "
            "WHERE org_id = ? AND id = ?",
            (org_id, bot_id),
        ).fetchone()
        return Bot(*row) if row else None

    def list_bots(self, org_id: str, before: str | None, limit: int) -> list[Bot]:
        rows = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots "
            "WHERE org_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return [Bot(*r) for r in rows]

    def bot_by_token(self, token: str) -> Bot | None:
        row = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots WHERE token = ?",
            (token,),
        ).fetchone()
        return Bot(*row) if row else None

    def insert_capture(self, capture: Capture) -> None:
        self._x(
            "INSERT INTO captures (id, bot_id, received_at_ms, method, headers, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                capture.id,
                capture.bot_id,
                capture.received_at_ms,
                capture.method,
                orjson.dumps(capture.headers).decode(),
                capture.body,
            ),
        )

    def list_captures(self, bot_id: str, before: str | None, limit: int) -> list[Capture]:
        rows = self._x(
            "SELECT id, bot_id, received_at_ms, method, headers, body FROM captures "
            "WHERE bot_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (bot_id, before, before, limit),
        ).fetchall()
        return [
            Capture(str(r[0]), str(r[1]), int(r[2]), str(r[3]), orjson.loads(r[4]), str(r[5]))
            for r in rows
        ]
