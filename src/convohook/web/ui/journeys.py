"""Bot Studio journeys: a trigger, optional conditions and ordered actions, built with a plain
form (no script: CSS's :has() shows each action row's fields for the type chosen, and the next
row once one is filled). The form becomes the JSON the use case takes (usecases/bots.py), which
says what is wrong, field by field; the form comes back with what was typed and why.

A journey's page says what the bot does in words and lists its runs, newest first, live: an SSE
stream (as the capture view's in bots.py) sends the runs table again whenever it changed, woken
by `signals.bot_runs` when this process finishes a run, and looking every second for runs that
another process (scale-out) carried out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from convohook.domain.bots import (
    MAX_ACTIONS,
    TRIGGER_WEBHOOK,
    AddTags,
    Assign,
    MarkDone,
    SendMessage,
    time_zones,
)
from convohook.domain.model import Bot, BotRun, Channel, Session, User
from convohook.domain.replies import MAX_TEXT_BYTES
from convohook.usecases.bots import (
    BotChanges,
    create_bot,
    delete_bot,
    get_bot,
    list_runs,
    update_bot,
)
from convohook.usecases.channels import list_channels
from convohook.usecases.conversations import agents_by_id
from convohook.usecases.errors import Invalid, NotFound
from convohook.web.ui.common import (
    current_session,
    form_action,
    page,
    render,
    see_other,
    services_of,
    templates,
)
from convohook.web.ui.live import Quiet, event_stream, sse

TRIGGER_LABELS = {
    "conversation.opened": "Conversation opened",
    "conversation.closed": "Conversation closed",
    "message.received": "Message received",
}
TRIGGER_HINTS = {
    "conversation.opened": "when a customer's message opens a conversation (their first, or "
    "the first after it was marked done)",
    "conversation.closed": "when a conversation is marked done (by hand, through the API, by "
    "inactivity or by a bot)",
    "message.received": "on every message a customer sends",
}
ACTION_LABELS = {
    "send_message": "Send message",
    "assign": "Assign",
    "add_tags": "Add tags",
    "mark_done": "Mark as done",
}
OUTCOME_LABELS = {"done": "done", "skipped": "skipped", "failed": "failed"}
RUN_STATUSES = {"pending": "Pending", "done": "Done", "skipped": "Skipped", "failed": "Failed"}
REASON_LABELS = {"first_message": "their first message", "reopened": "reopened (wrote again)"}
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
ROWS = 5  # action rows offered; a bot made through the API with more gets one more than it has
RUNS_SHOWN = 50
CHANNELS_SHOWN = 200
NOTICES = {
    "created": "Bot created: it runs from now on.",
    "saved": "Saved: the change applies to runs from now on.",
    "enabled": "Enabled: it runs from now on.",
    "disabled": "Disabled: it does not run until enabled again.",
}
_FIELD = re.compile(r"actions\[(\d+)\](?:\.(\w+))?(?:\[\d+\])?")
_FIELD_WORDS = {
    "name": "Bot name",
    "actions": "Actions",
    "conditions": "Conditions",
    "conditions.reason": "Conversation opened by",
    "conditions.channel_ids": "Channels",
    "conditions.text_contains": "Message contains",
    "conditions.min_followers": "At least this many followers",
    "conditions.follows_business": "Follows you",
    "conditions.verified": "Verified account",
    "conditions.referral": "Came from an ad or an ig.me link",
    "conditions.business_hours": "Business hours",
    "conditions.business_hours.tz": "Business hours, time zone",
    "conditions.business_hours.days": "Business hours, days",
    "conditions.business_hours.from": "Business hours, from",
    "conditions.business_hours.to": "Business hours, to",
    "conditions.business_hours.inside": "Business hours",
}
_ACTION_FIELD_WORDS = {
    "text": "message",
    "tags": "tags",
    "agent_id": "agent",
    "strategy": "assign to",
    "type": "type",
}


def field_words(field: str, rows: list[int]) -> str:
    """An Invalid's field, as the form names it: actions[1].text → "Action 3, message" (the
    third row, when the second was left empty)."""
    match = _FIELD.fullmatch(field)
    if match is None:
        base = re.sub(r"\[\d+\]$", "", field)  # conditions.reason[0] → conditions.reason
        return _FIELD_WORDS.get(base, base)
    index = int(match[1])
    row = rows[index] + 1 if index < len(rows) else index + 1
    what = _ACTION_FIELD_WORDS.get(match[2] or "", "")
    return f"Action {row}, {what}" if what else f"Action {row}"


# --- the form, to and from the JSON the use case takes ------------------------------------


@dataclass(frozen=True, slots=True)
class Definition:
    conditions: dict[str, object]
    actions: list[dict[str, object]]
    rows: list[int]  # the form row of each action (rows left empty are not actions)


def _words(raw: str) -> list[str]:
    return [w.strip() for w in raw.split(",") if w.strip()]


def _yes_no(raw: str) -> bool | None:
    return {"yes": True, "no": False}.get(raw)


def _list(form: dict[str, Any], key: str) -> list[str]:
    value = form.get(key, [])
    return [value] if isinstance(value, str) else [str(v) for v in value]


def definition_from_form(form: dict[str, Any]) -> Definition:
    """The bot as the API would be sent it; Invalid for what the form itself cannot say."""
    conditions: dict[str, object] = {}
    if reasons := _list(form, "reason"):
        conditions["reason"] = reasons
    if channels := _list(form, "channel_ids"):
        conditions["channel_ids"] = channels
    if words := _words(form.get("text_contains", "")):
        conditions["text_contains"] = words
    followers = form.get("min_followers", "").strip()
    if followers:
        if not followers.isdigit():
            raise Invalid("conditions.min_followers", "a whole number, 0 or more")
        conditions["min_followers"] = int(followers)
    for key in ("follows_business", "verified", "referral"):
        flag = _yes_no(form.get(key, ""))
        if flag is not None:
            conditions[key] = flag
    hours = form.get("hours", "")
    if hours in ("inside", "outside"):
        days = [int(d) for d in _list(form, "days") if d.isdigit()]
        conditions["business_hours"] = {
            "tz": form.get("hours_tz", ""),
            "days": days,
            "from": form.get("hours_from", ""),
            "to": form.get("hours_to", ""),
            "inside": hours == "inside",
        }
    actions: list[dict[str, object]] = []
    rows: list[int] = []
    for row in range(MAX_ACTIONS):
        kind = form.get(f"action{row}_type", "")
        if not kind:
            continue
        action: dict[str, object] = {"type": kind}
        if kind == "send_message":
            action["text"] = form.get(f"action{row}_text", "").replace("\r\n", "\n")
        elif kind == "assign":
            whom = form.get(f"action{row}_assign", "round_robin")
            if whom == "round_robin":
                action["strategy"] = "round_robin"
            else:
                action |= {"strategy": "agent", "agent_id": whom}
        elif kind == "add_tags":
            action["tags"] = _words(form.get(f"action{row}_tags", ""))
        actions.append(action)
        rows.append(row)
    return Definition(conditions, actions, rows)


def form_of(bot: Bot) -> dict[str, Any]:
    """The builder's fields, filled in as the bot is (for its edit form)."""
    c = bot.conditions
    form: dict[str, Any] = {
        "name": bot.name,
        "trigger": bot.trigger,
        "reason": list(c.reason or ()),
        "channel_ids": list(c.channel_ids or ()),
        "text_contains": ", ".join(c.text_contains or ()),
        "min_followers": "" if c.min_followers is None else str(c.min_followers),
    }
    for key, flag in (
        ("follows_business", c.follows_business),
        ("verified", c.verified),
        ("referral", c.referral),
    ):
        form[key] = "" if flag is None else ("yes" if flag else "no")
    hours = c.business_hours
    if hours is not None:
        form |= {
            "hours": "inside" if hours.inside else "outside",
            "hours_tz": hours.tz,
            "days": [str(d) for d in hours.days],
            "hours_from": hours.start,
            "hours_to": hours.end,
        }
    for row, action in enumerate(bot.actions):
        if isinstance(action, SendMessage):
            form |= {f"action{row}_type": "send_message", f"action{row}_text": action.text}
        elif isinstance(action, Assign):
            whom = action.agent_id if action.strategy == "agent" else "round_robin"
            form |= {f"action{row}_type": "assign", f"action{row}_assign": whom}
        elif isinstance(action, AddTags):
            form |= {f"action{row}_type": "add_tags", f"action{row}_tags": ", ".join(action.tags)}
        elif isinstance(action, MarkDone):
            form[f"action{row}_type"] = "mark_done"
    return form


def _rows_shown(form: dict[str, Any]) -> int:
    used = [r for r in range(MAX_ACTIONS) if form.get(f"action{r}_type")]
    return min(MAX_ACTIONS, max(ROWS, (used[-1] + 2) if used else 0))


# --- in words ---------------------------------------------------------------------------------


def _either(flag: bool, yes: str, no: str) -> str:
    return yes if flag else no


def conditions_in_words(bot: Bot, channels: dict[str, Channel]) -> list[str]:
    c = bot.conditions
    said: list[str] = []
    if c.reason is not None:
        said.append(
            "The conversation opened by " + " or ".join(REASON_LABELS.get(r, r) for r in c.reason)
        )
    if c.channel_ids is not None:
        names = [
            "@" + channels[i].handle if i in channels else f"{i} (no longer connected)"
            for i in c.channel_ids
        ]
        said.append("On " + ", ".join(names))
    if c.text_contains is not None:
        said.append("The message contains any of: " + ", ".join(f"“{w}”" for w in c.text_contains))
    if c.min_followers is not None:
        said.append(f"The customer has at least {c.min_followers:,} followers")
    if c.follows_business is not None:
        said.append(
            _either(c.follows_business, "The customer follows you", "They do not follow you")
        )
    if c.verified is not None:
        said.append(_either(c.verified, "The customer's account is verified", "It is not verified"))
    if c.referral is not None:
        said.append(
            _either(
                c.referral,
                "The message came from an ad or an ig.me link",
                "The message did not come from an ad or an ig.me link",
            )
        )
    hours = c.business_hours
    if hours is not None:
        days = ", ".join(DAYS[d - 1] for d in hours.days)
        window = "all day" if hours.start == hours.end else f"{hours.start} to {hours.end}"
        where = "Inside" if hours.inside else "Outside"
        said.append(f"{where} business hours: {days}, {window} ({hours.tz})")
    return said


def action_in_words(action: object, agents: dict[str, User]) -> str:
    if isinstance(action, SendMessage):
        return f"Send message: “{action.text}”"
    if isinstance(action, Assign):
        if action.strategy == "round_robin":
            return "Assign in turn (round robin) among available agents"
        agent = agents.get(action.agent_id or "")
        return f"Assign to {agent.name if agent else action.agent_id}"
    if isinstance(action, AddTags):
        return "Add tags: " + ", ".join(action.tags)
    return "Mark the conversation as done"


# --- pages ------------------------------------------------------------------------------------


async def _org_lists(request: Request, session: Session) -> tuple[list[Channel], list[User]]:
    svc = services_of(request)
    org_id = session.user.org_id
    channels = await svc.db.read(list_channels, org_id, None, CHANNELS_SHOWN)
    agents = await svc.db.read(agents_by_id, org_id)
    return channels, list(agents.values())


async def render_builder(
    request: Request,
    session: Session,
    form: dict[str, Any],
    *,
    bot: Bot | None = None,
    status: int = 200,
    error: str | None = None,
) -> Response:
    """The builder: a new journey (posting to /bots) or `bot`'s edit form."""
    channels, agents = await _org_lists(request, session)
    trigger = bot.trigger if bot is not None else form.get("trigger", "")
    return render(
        "bot_builder.html",
        status,
        session=session,
        bot=bot,
        form=form,
        trigger=trigger,
        trigger_label=TRIGGER_LABELS.get(trigger, trigger),
        trigger_hint=TRIGGER_HINTS.get(trigger, ""),
        channels=channels,
        agents=agents,
        zones=time_zones(),
        days=DAYS,
        rows=_rows_shown(form),
        action_labels=ACTION_LABELS,
        max_text_bytes=MAX_TEXT_BYTES,
        error=error,
    )


async def create_journey(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """POST /bots with a journey's trigger: the builder first (the Create New Bot form sends
    only a name and the trigger), then, once it is sent (`step=build`), the bot."""
    if form.get("step") != "build":
        return await render_builder(request, session, form)
    svc = services_of(request)
    definition: Definition | None = None
    try:
        definition = definition_from_form(form)
        bot = await svc.db.run(
            create_bot,
            session.user.org_id,
            form.get("name", ""),
            form.get("trigger", ""),
            svc.clock(),
            conditions=definition.conditions,
            actions=definition.actions,
        )
    except Invalid as refused:
        rows = definition.rows if definition is not None else []
        said = f"{field_words(refused.field, rows)}: {refused.problem}"
        return await render_builder(request, session, form, status=422, error=said)
    return see_other(f"/bots/{bot.id}?notice=created")


@page
async def edit_page(request: Request, session: Session) -> Response:
    svc = services_of(request)
    bot = await svc.db.read(get_bot, session.user.org_id, request.path_params["bot_id"])
    return await render_builder(request, session, form_of(bot), bot=bot)


@form_action
async def edit(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """A journey's whole definition; a capture bot's name only (its trigger says the rest)."""
    svc = services_of(request)
    org_id, bot_id = session.user.org_id, request.path_params["bot_id"]
    bot = await svc.db.read(get_bot, org_id, bot_id)
    definition: Definition | None = None
    try:
        if bot.trigger == TRIGGER_WEBHOOK:
            changes = BotChanges(name=form.get("name", ""))
        else:
            definition = definition_from_form(form)
            changes = BotChanges(
                name=form.get("name", ""),
                conditions=definition.conditions,
                actions=definition.actions,
            )
        await svc.db.run(update_bot, org_id, bot_id, changes, svc.clock())
    except Invalid as refused:
        rows = definition.rows if definition is not None else []
        said = f"{field_words(refused.field, rows)}: {refused.problem}"
        return await render_builder(request, session, form, bot=bot, status=422, error=said)
    return see_other(f"/bots/{bot_id}?notice=saved")


@form_action
async def set_enabled(request: Request, session: Session, form: dict[str, Any]) -> Response:
    # The button says which state it asks for: a second click repeats it, never flips it back.
    svc = services_of(request)
    enabled = form.get("enabled") == "true"
    bot_id = request.path_params["bot_id"]
    changes = BotChanges(enabled=enabled)
    await svc.db.run(update_bot, session.user.org_id, bot_id, changes, svc.clock())
    return see_other(f"/bots/{bot_id}?notice={'enabled' if enabled else 'disabled'}")


@form_action
async def delete(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    await svc.db.run(delete_bot, session.user.org_id, request.path_params["bot_id"])
    return see_other("/bots?notice=deleted")


def render_runs(runs: list[BotRun]) -> str:
    return templates.get_template("_runs.html").render(
        runs=runs,
        triggers=TRIGGER_LABELS,
        statuses=RUN_STATUSES,
        actions=ACTION_LABELS,
    )


async def journey_page(request: Request, session: Session, bot: Bot) -> Response:
    svc = services_of(request)
    org_id = session.user.org_id
    channels, agents = await _org_lists(request, session)
    runs = await svc.db.read(list_runs, org_id, bot.id, None, RUNS_SHOWN)
    by_id = {a.id: a for a in agents}
    return render(
        "bot_journey.html",
        session=session,
        bot=bot,
        trigger=TRIGGER_LABELS.get(bot.trigger, bot.trigger),
        trigger_hint=TRIGGER_HINTS.get(bot.trigger, ""),
        conditions=conditions_in_words(bot, {c.id: c for c in channels}),
        actions=[action_in_words(a, by_id) for a in bot.actions],
        runs=render_runs(runs),
        notice=NOTICES.get(request.query_params.get("notice", "")),
    )


async def runs_stream(request: Request) -> Response:
    """GET /bots/{id}/runs/stream: the runs table (`runs` events) each time it changes."""
    session = await current_session(request)
    if session is None:
        return Response("sign in again", status_code=401)
    svc = services_of(request)
    org_id = session.user.org_id
    try:
        bot = await svc.db.read(get_bot, org_id, request.path_params["bot_id"])
    except NotFound:
        return Response("no such bot", status_code=404)

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 2000\n\n"
        shown: str | None = None
        quiet = Quiet(svc.signals.bot_runs)
        while True:
            change = svc.signals.bot_runs.current()
            try:
                runs = await svc.db.read(list_runs, org_id, bot.id, None, RUNS_SHOWN)
            except NotFound:  # deleted meanwhile
                return
            html = render_runs(runs)
            if html != shown:
                shown = html
                quiet.sent()
                yield sse("runs", html)
            if keepalive := await quiet.wait(change):
                yield keepalive

    return event_stream(events())
