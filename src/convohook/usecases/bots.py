"""Capture bots ("On Webhook"): a URL that records whatever it receives, viewed in Bot Studio."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from convohook.domain.ids import new_id
from convohook.domain.model import Bot, Capture
from convohook.storage.base import Transaction
from convohook.usecases.errors import NotFound

TRIGGERS = ("webhook",)


def capture_url(public_url: str, bot: Bot) -> str:
    """Where the bot listens: the token in it is the credential."""
    return f"{public_url}/hooks/bots/{bot.token}"


def create_bot(tx: Transaction, org_id: str, name: str, trigger: str, now_ms: int) -> Bot:
    bot = Bot(
        id=new_id("bot", now_ms),
        org_id=org_id,
        name=name,
        trigger=trigger,
        token=secrets.token_urlsafe(24),  # the capture URL is the credential: unguessable
        created_at_ms=now_ms,
    )
    tx.insert_bot(bot)
    return bot


def list_bots(tx: Transaction, org_id: str, cursor: str | None, limit: int) -> list[Bot]:
    return tx.list_bots(org_id, cursor, limit)


def get_bot(tx: Transaction, org_id: str, bot_id: str) -> Bot:
    bot = tx.get_bot(org_id, bot_id)
    if bot is None:
        raise NotFound("bot", bot_id)
    return bot


def list_captures(
    tx: Transaction, org_id: str, bot_id: str, cursor: str | None, limit: int
) -> list[Capture]:
    """Newest first."""
    return tx.list_captures(get_bot(tx, org_id, bot_id).id, cursor, limit)


def bot_by_token(tx: Transaction, token: str) -> Bot | None:
    return tx.bot_by_token(token)


def record_capture(
    tx: Transaction,
    bot: Bot,
    *,
    method: str,
    headers: Mapping[str, str],
    body: str,
    now_ms: int,
) -> Capture:
    capture = Capture(
        id=new_id("capt", now_ms),
        bot_id=bot.id,
        received_at_ms=now_ms,
        method=method,
        headers=dict(headers),
        body=body,
    )
    tx.insert_capture(capture)
    return capture
