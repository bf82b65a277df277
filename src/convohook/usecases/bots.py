"""Bots (Bot Studio, DESIGN section 7): capture bots ("On Webhook"), a URL that records whatever
it receives, and journeys, a trigger, conditions and ordered actions that run once per
triggering event (usecases/bot_runs.py carries them out)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from convohook.domain.bots import (
    JOURNEY_TRIGGERS,
    TRIGGER_WEBHOOK,
    Action,
    Assign,
    BotDefinitionError,
    Conditions,
    action_json,
    check_bot,
    parse_actions,
    parse_conditions,
    parse_trigger,
)
from convohook.domain.ids import new_id
from convohook.domain.model import Bot, BotRun, Capture
from convohook.domain.text import NUL_MESSAGE, has_nul, trimmed
from convohook.storage.base import Transaction
from convohook.usecases.errors import Conflict, Invalid, NotFound

TRIGGERS = (TRIGGER_WEBHOOK, *JOURNEY_TRIGGERS)
NAME_MAX_LENGTH = 200
# Leaves everything as it is (a PATCH that does not name a field).
UNCHANGED = object()


def capture_url(public_url: str, bot: Bot) -> str:
    """Where a capture bot listens: the token in it is the credential."""
    return f"{public_url}/hooks/bots/{bot.token}"


def _clean_name(name: str) -> str:
    cleaned = trimmed(name)
    if not cleaned:
        raise Invalid("name", "give the bot a name")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise Invalid("name", f"at most {NAME_MAX_LENGTH} characters")
    if has_nul(cleaned):
        raise Invalid("name", NUL_MESSAGE)
    return cleaned


def _definition(
    tx: Transaction, org_id: str, trigger: str, raw_conditions: object, raw_actions: object
) -> tuple[Conditions, tuple[Action, ...]]:
    """The definition checked: its shape (domain/bots.py), then what only the org can say (its
    agents and channels exist)."""
    try:
        conditions = parse_conditions(raw_conditions)
        actions = parse_actions(raw_actions)
        check_bot(trigger, conditions, actions)
    except BotDefinitionError as refused:
        raise Invalid(refused.field, refused.message) from None
    for index, action in enumerate(actions):
        agent_id = action.agent_id if isinstance(action, Assign) else None
        if agent_id is not None and tx.get_agent(org_id, agent_id) is None:
            raise Invalid(
                f"actions[{index}].agent_id",
                f"no agent {agent_id!r} in this org (GET /api/v1/agents lists them)",
            )
    for channel_id in conditions.channel_ids or ():
        if tx.get_channel(org_id, channel_id) is None:
            raise Invalid(
                "conditions.channel_ids",
                f"no channel {channel_id!r} in this org (GET /api/v1/channels lists them)",
            )
    return conditions, actions


def create_bot(
    tx: Transaction,
    org_id: str,
    name: str,
    trigger: str,
    now_ms: int,
    *,
    conditions: object = None,
    actions: object = None,
    enabled: bool = True,
) -> Bot:
    """A capture bot (trigger `webhook`) or a journey; Invalid naming the field if it cannot
    work."""
    try:
        trigger = parse_trigger(trigger)
    except BotDefinitionError as refused:
        raise Invalid(refused.field, refused.message) from None
    if trigger == TRIGGER_WEBHOOK:
        # Even an empty one: a capture bot has no definition at all, as the API document says.
        for field, given in (("conditions", conditions), ("actions", actions)):
            if given is not None:
                raise Invalid(
                    field, f"a capture bot only records what its URL receives: no {field}"
                )
    checked_conditions, checked_actions = _definition(tx, org_id, trigger, conditions, actions)
    bot = Bot(
        id=new_id("bot", now_ms),
        org_id=org_id,
        name=_clean_name(name),
        trigger=trigger,
        # A capture URL is the credential: unguessable. Journeys get one too (never shown), so
        # every bot has the same shape in the table.
        token=secrets.token_urlsafe(24),
        created_at_ms=now_ms,
        conditions=checked_conditions,
        actions=checked_actions,
        enabled=enabled,
        updated_at_ms=now_ms,
    )
    tx.insert_bot(bot)
    return bot


@dataclass(frozen=True, slots=True)
class BotChanges:
    """What a PATCH names; UNCHANGED leaves a field as it is. The trigger cannot change: a bot
    of another trigger is another bot (its runs would mean something else)."""

    name: object = UNCHANGED
    conditions: object = UNCHANGED
    actions: object = UNCHANGED
    enabled: object = UNCHANGED


def update_bot(tx: Transaction, org_id: str, bot_id: str, changes: BotChanges, now_ms: int) -> Bot:
    bot = tx.lock_bot(org_id, bot_id)
    if bot is None:
        raise NotFound("bot", bot_id)
    name = bot.name if changes.name is UNCHANGED else _clean_name(str(changes.name))
    raw_conditions = (
        bot.conditions.to_json() if changes.conditions is UNCHANGED else changes.conditions
    )
    raw_actions = (
        [action_json(a) for a in bot.actions] if changes.actions is UNCHANGED else changes.actions
    )
    if bot.trigger == TRIGGER_WEBHOOK and _is_journey(raw_conditions, raw_actions):
        # The PATCH is well formed; it is this bot that cannot take it.
        raise Conflict(
            "a capture bot only records what its URL receives: it takes no conditions or "
            "actions (create a journey bot instead)"
        )
    conditions, actions = _definition(tx, org_id, bot.trigger, raw_conditions, raw_actions)
    enabled = bot.enabled
    if changes.enabled is not UNCHANGED:
        if not isinstance(changes.enabled, bool):
            raise Invalid("enabled", "true or false")
        enabled = changes.enabled
    changed = replace(
        bot,
        name=name,
        conditions=conditions,
        actions=actions,
        enabled=enabled,
        updated_at_ms=now_ms,
    )
    tx.update_bot(changed)
    return changed


def _is_journey(raw_conditions: object, raw_actions: object) -> bool:
    try:
        return parse_conditions(raw_conditions) != Conditions() or bool(parse_actions(raw_actions))
    except BotDefinitionError as refused:
        raise Invalid(refused.field, refused.message) from None


def delete_bot(tx: Transaction, org_id: str, bot_id: str) -> None:
    """Gone with its captures and runs; a run it had pending does not happen."""
    if not tx.delete_bot(org_id, bot_id):
        raise NotFound("bot", bot_id)


def list_bots(tx: Transaction, org_id: str, cursor: str | None, limit: int) -> list[Bot]:
    return tx.list_bots(org_id, cursor, limit)


def get_bot(tx: Transaction, org_id: str, bot_id: str) -> Bot:
    bot = tx.get_bot(org_id, bot_id)
    if bot is None:
        raise NotFound("bot", bot_id)
    return bot


def list_runs(
    tx: Transaction, org_id: str, bot_id: str, cursor: str | None, limit: int
) -> list[BotRun]:
    """Newest first."""
    return tx.list_bot_runs(get_bot(tx, org_id, bot_id).id, cursor, limit)


def list_captures(
    tx: Transaction, org_id: str, bot_id: str, cursor: str | None, limit: int
) -> list[Capture]:
    """Newest first."""
    return tx.list_captures(get_bot(tx, org_id, bot_id).id, cursor, limit)


def bot_by_token(tx: Transaction, token: str) -> Bot | None:
    """The capture bot listening at this token (a journey has no capture URL)."""
    bot = tx.bot_by_token(token)
    return bot if bot is not None and bot.trigger == TRIGGER_WEBHOOK else None


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
