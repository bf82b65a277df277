"""Bots (capture URLs and journeys), what capture URLs received, and journeys' runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from convohook.domain.bots import action_json, parse_actions, parse_conditions
from convohook.domain.model import ActionOutcome, Bot, BotRun, Capture
from convohook.storage.sql.base import SQLBase

_BOT_COLS = (
    "id, org_id, name, trigger, token, created_at_ms, conditions, actions, enabled, updated_at_ms"
)
_RUN_COLS = (
    "r.id, r.org_id, r.bot_id, r.trigger, r.trigger_key, r.conversation_id, r.contact_id, "
    "r.text, r.referral, r.reason, r.happened_at_ms, r.status, r.detail, r.outcomes, "
    "r.created_at_ms, r.finished_at_ms"
)


def _bot(row: Sequence[Any]) -> Bot:
    # Stored definitions were checked on the way in; parsing them again only types them.
    return Bot(
        id=row[0],
        org_id=row[1],
        name=row[2],
        trigger=row[3],
        token=row[4],
        created_at_ms=int(row[5]),
        conditions=parse_conditions(orjson.loads(row[6])),
        actions=parse_actions(orjson.loads(row[7])),
        enabled=bool(row[8]),
        updated_at_ms=int(row[9]),
    )


def _run(row: Sequence[Any]) -> BotRun:
    outcomes = orjson.loads(row[13]) if row[13] else []
    return BotRun(
        id=row[0],
        org_id=row[1],
        bot_id=row[2],
        trigger=row[3],
        trigger_key=row[4],
        conversation_id=row[5],
        contact_id=row[6],
        text=row[7],
        referral=bool(row[8]),
        reason=row[9],
        happened_at_ms=int(row[10]),
        status=row[11],
        detail=row[12],
        outcomes=tuple(ActionOutcome(o["type"], o["status"], o.get("detail")) for o in outcomes),
        created_at_ms=int(row[14]),
        finished_at_ms=None if row[15] is None else int(row[15]),
    )


def _definition(bot: Bot) -> tuple[str, str]:
    return (
        orjson.dumps(bot.conditions.to_json()).decode(),
        orjson.dumps([action_json(a) for a in bot.actions]).decode(),
    )


class BotsSQL(SQLBase):
    def insert_bot(self, bot: Bot) -> None:
        conditions, actions = _definition(bot)
        self._x(
            f"INSERT INTO bots ({_BOT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                bot.id,
                bot.org_id,
                bot.name,
                bot.trigger,
                bot.token,
                bot.created_at_ms,
                conditions,
                actions,
                bot.enabled,
                bot.updated_at_ms,
            ),
        )

    def update_bot(self, bot: Bot) -> None:
        """Its name, definition and switch (the trigger and the token never change)."""
        conditions, actions = _definition(bot)
        self._x(
            "UPDATE bots SET name = ?, conditions = ?, actions = ?, enabled = ?, "
            "updated_at_ms = ? WHERE id = ?",
            (bot.name, conditions, actions, bot.enabled, bot.updated_at_ms, bot.id),
        )

    def delete_bot(self, org_id: str, bot_id: str) -> bool:
        cur = self._x("DELETE FROM bots WHERE org_id = ? AND id = ?", (org_id, bot_id))
        return int(cur.rowcount) > 0

    def get_bot(self, org_id: str, bot_id: str) -> Bot | None:
        row = self._x(
            f"SELECT {_BOT_COLS} FROM bots WHERE org_id = ? AND id = ?", (org_id, bot_id)
        ).fetchone()
        return _bot(row) if row else None

    def lock_bot(self, org_id: str, bot_id: str) -> Bot | None:
        """Read it and hold its row until commit: a change made meanwhile waits."""
        row = self._x(
            f"SELECT {_BOT_COLS} FROM bots WHERE org_id = ? AND id = ?" + self.FOR_UPDATE,
            (org_id, bot_id),
        ).fetchone()
        return _bot(row) if row else None

    def list_bots(self, org_id: str, before: str | None, limit: int) -> list[Bot]:
        rows = self._x(
            f"SELECT {_BOT_COLS} FROM bots "
            "WHERE org_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return [_bot(r) for r in rows]

    def bot_by_token(self, token: str) -> Bot | None:
        row = self._x(f"SELECT {_BOT_COLS} FROM bots WHERE token = ?", (token,)).fetchone()
        return _bot(row) if row else None

    def bots_for(self, org_id: str, trigger: str) -> list[Bot]:
        """The org's enabled bots for `trigger`, oldest first: the order they run in. The org's
        enabled bots are read once per transaction, every trigger at once: a processing batch
        asks for every message, and an org without bots costs one statement per batch."""
        if org_id not in self._bots_for:

            def load() -> tuple[Bot, ...]:
                rows = self._x(
                    f"SELECT {_BOT_COLS} FROM bots WHERE org_id = ? AND enabled = TRUE "
                    "AND trigger <> 'webhook' ORDER BY id",
                    (org_id,),
                ).fetchall()
                return tuple(_bot(r) for r in rows)

            self._bots_for[org_id] = list(self._cached(("bots", org_id), load))
        return [bot for bot in self._bots_for[org_id] if bot.trigger == trigger]

    def insert_bot_runs(self, runs: Sequence[BotRun]) -> None:
        """New pending runs; a run for a (bot, trigger) that has one already is not added."""
        self._insert_many(
            "INSERT INTO bot_runs (id, org_id, bot_id, trigger, trigger_key, conversation_id, "
            "contact_id, text, referral, reason, happened_at_ms, status, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) "
            "ON CONFLICT (bot_id, trigger_key) DO NOTHING",
            [
                (
                    r.id,
                    r.org_id,
                    r.bot_id,
                    r.trigger,
                    r.trigger_key,
                    r.conversation_id,
                    r.contact_id,
                    r.text,
                    r.referral,
                    r.reason,
                    r.happened_at_ms,
                    r.created_at_ms,
                )
                for r in runs
            ],
        )

    def claim_bot_runs(self, limit: int, now_ms: int, webhook_first_ms: int) -> list[BotRun]:
        """Pending runs that can run now, oldest first, held until commit. A run waits while
        its customer's profile is being looked up (conditions read it); while a webhook of its
        conversation's events has not had its first attempt, for at most `webhook_first_ms`
        after the event (the webhook goes out first); and while an earlier run of its
        conversation is pending (each run sees the previous one's effects), so at most one run
        per conversation comes back."""
        rows = self._x(
            f"SELECT {_RUN_COLS} FROM bot_runs r WHERE r.status = 'pending' "
            "AND NOT EXISTS (SELECT 1 FROM events e "
            " WHERE e.contact_id = r.contact_id AND e.payload IS NULL) "
            "AND NOT EXISTS (SELECT 1 FROM events e JOIN deliveries d ON d.event_id = e.id "
            " JOIN webhooks w ON w.id = d.webhook_id WHERE e.conversation_id = r.conversation_id "
            " AND d.status = 'pending' AND d.attempt_count = 0 AND w.enabled = TRUE "
            " AND d.created_at_ms > ?) "
            "AND NOT EXISTS (SELECT 1 FROM bot_runs p WHERE p.conversation_id = r.conversation_id "
            " AND p.status = 'pending' AND p.seq < r.seq) "
            "ORDER BY r.seq LIMIT ?" + self.SKIP_LOCKED,
            (now_ms - webhook_first_ms, limit),
        ).fetchall()
        return [_run(r) for r in rows]

    def finish_bot_run(
        self,
        run_id: str,
        status: str,
        detail: str | None,
        outcomes: Sequence[ActionOutcome],
        now_ms: int,
    ) -> bool:
        cur = self._x(
            "UPDATE bot_runs SET status = ?, detail = ?, outcomes = ?, finished_at_ms = ? "
            "WHERE id = ? AND status = 'pending'",
            (
                status,
                detail,
                orjson.dumps(
                    [{"type": o.type, "status": o.status, "detail": o.detail} for o in outcomes]
                ).decode(),
                now_ms,
                run_id,
            ),
        )
        return int(cur.rowcount) > 0

    def list_bot_runs(self, bot_id: str, before: str | None, limit: int) -> list[BotRun]:
        rows = self._x(
            f"SELECT {_RUN_COLS} FROM bot_runs r "
            "WHERE r.bot_id = ? AND (CAST(? AS TEXT) IS NULL "
            " OR r.seq < (SELECT b.seq FROM bot_runs b WHERE b.id = ?)) "
            "ORDER BY r.seq DESC LIMIT ?",
            (bot_id, before, before, limit),
        ).fetchall()
        return [_run(r) for r in rows]

    def has_pending_bot_runs(self) -> bool:
        return (
            self._x("SELECT 1 FROM bot_runs WHERE status = 'pending' LIMIT 1").fetchone()
            is not None
        )

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
