"""Bot Studio journeys (DESIGN section 7) as pure rules: what a bot definition may say, whether a
triggering event meets its conditions, and how a send_message text is filled in."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from convohook.domain.replies import MAX_TEXT_BYTES
from convohook.domain.text import NUL_MESSAGE, has_nul, trimmed

TRIGGER_WEBHOOK = "webhook"
JOURNEY_TRIGGERS = ("conversation.opened", "conversation.closed", "message.received")
TRIGGERS = (TRIGGER_WEBHOOK, *JOURNEY_TRIGGERS)
REASONS = ("first_message", "reopened")
MAX_ACTIONS = 10
# The same limits as usecases/tags.py (tags set by hand), which the domain cannot import: a tag a
# bot adds must be one a person could have added.
TAG_MAX_LENGTH = 50
MAX_TAGS = 20

TEXT_CONTAINS_MAX_LENGTH = 100
TEXT_CONTAINS_MAX_ENTRIES = 20
PLACEHOLDERS = ("name", "username", "customer_id")
ACTION_TYPES = ("send_message", "assign", "add_tags", "mark_done")
STRATEGIES = ("round_robin", "agent")

# DOTALL: anything written like a placeholder is checked, even across a line break, so that no
# typo reaches a customer as literal braces.
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_CONDITION_KEYS = (
    "reason",
    "channel_ids",
    "text_contains",
    "min_followers",
    "follows_business",
    "verified",
    "referral",
    "business_hours",
)
_BUSINESS_HOURS_KEYS = ("tz", "days", "from", "to", "inside")
_ACTION_KEYS = {
    "send_message": ("type", "text"),
    "assign": ("type", "strategy", "agent_id"),
    "add_tags": ("type", "tags"),
    "mark_done": ("type",),
}
# Named here rather than by strftime("%A"), whose words follow the process's locale.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# Files in the zone database that are not IANA zones: "localtime" is the server's own zone.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


def time_zones() -> list[str]:
    """The IANA zones this machine knows, sorted: what `business_hours.tz` accepts."""
    return sorted(zoneinfo.available_timezones() - _NOT_ZONES)


class BotDefinitionError(ValueError):
    """A bot that cannot work; `field` is the JSON path to change (e.g. "actions[1].text")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class BusinessHours:
    tz: str
    days: tuple[int, ...]  # ISO weekdays, 1 = Monday
    start: str  # "HH:MM", the API's "from"
    end: str  # "HH:MM", the API's "to"; before start for an overnight window
    inside: bool


@dataclass(frozen=True, slots=True)
class Conditions:
    reason: tuple[str, ...] | None = None
    channel_ids: tuple[str, ...] | None = None
    text_contains: tuple[str, ...] | None = None
    min_followers: int | None = None
    follows_business: bool | None = None
    verified: bool | None = None
    referral: bool | None = None
    business_hours: BusinessHours | None = None

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {}
        for key, value in (
            ("reason", self.reason),
            ("channel_ids", self.channel_ids),
            ("text_contains", self.text_contains),
        ):
            if value is not None:
                body[key] = list(value)
        for key, flag in (
            ("min_followers", self.min_followers),
            ("follows_business", self.follows_business),
            ("verified", self.verified),
            ("referral", self.referral),
        ):
            if flag is not None:
                body[key] = flag
        hours = self.business_hours
        if hours is not None:
            body["business_hours"] = {
                "tz": hours.tz,
                "days": list(hours.days),
                "from": hours.start,
                "to": hours.end,
                "inside": hours.inside,
            }
        return body


@dataclass(frozen=True, slots=True)
class SendMessage:
    text: str


@dataclass(frozen=True, slots=True)
class Assign:
    strategy: str  # "round_robin" | "agent"
    agent_id: str | None = None


@dataclass(frozen=True, slots=True)
class AddTags:
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MarkDone:
    pass


Action = SendMessage | Assign | AddTags | MarkDone


def action_type(action: Action) -> str:
    if isinstance(action, SendMessage):
        return "send_message"
    if isinstance(action, Assign):
        return "assign"
    if isinstance(action, AddTags):
        return "add_tags"
    return "mark_done"


def action_json(action: Action) -> dict[str, object]:
    body: dict[str, object] = {"type": action_type(action)}
    if isinstance(action, SendMessage):
        body["text"] = action.text
    elif isinstance(action, Assign):
        body["strategy"] = action.strategy
        if action.agent_id is not None:
            body["agent_id"] = action.agent_id
    elif isinstance(action, AddTags):
        body["tags"] = list(action.tags)
    return body


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def parse_trigger(raw: object) -> str:
    if not isinstance(raw, str) or raw not in TRIGGERS:
        raise BotDefinitionError("trigger", f"must be one of {_one_of(TRIGGERS)}")
    return raw


def _unknown_key(prefix: str, raw: dict[object, object], known: tuple[str, ...]) -> None:
    for key in raw:
        if key not in known:
            raise BotDefinitionError(f"{prefix}.{key}", f"unknown; known: {_one_of(known)}")


def _strings(field: str, raw: object) -> list[str]:
    """A non-empty list of non-blank strings, each trimmed, without repeats."""
    if not isinstance(raw, list | tuple):
        raise BotDefinitionError(field, "must be a list of strings")
    if not raw:
        raise BotDefinitionError(field, "give at least one or leave the condition out")
    values: list[str] = []
    for index, item in enumerate(raw):
        if not isinstance(item, str):
            raise BotDefinitionError(f"{field}[{index}]", "must be a string")
        if has_nul(item):
            raise BotDefinitionError(f"{field}[{index}]", NUL_MESSAGE)
        value = trimmed(item)
        if not value:
            raise BotDefinitionError(f"{field}[{index}]", "cannot be blank")
        if value not in values:
            values.append(value)
    return values


def _flag(field: str, raw: object) -> bool:
    # JSON's true/false only: 0, 1 and "true" would pass a truthiness test by accident.
    if not isinstance(raw, bool):
        raise BotDefinitionError(field, "must be true or false")
    return raw


def _business_hours(raw: object) -> BusinessHours:
    field = "conditions.business_hours"
    if not isinstance(raw, dict):
        raise BotDefinitionError(field, 'must be an object like {"tz","days","from","to","inside"}')
    _unknown_key(field, raw, _BUSINESS_HOURS_KEYS)
    tz = raw.get("tz")
    if not isinstance(tz, str) or not _is_zone(tz):
        raise BotDefinitionError(f"{field}.tz", "must be an IANA time zone, e.g. Europe/Berlin")
    days = raw.get("days")
    if not isinstance(days, list | tuple) or not days:
        raise BotDefinitionError(f"{field}.days", "must be a non-empty list of days 1..7")
    for index, day in enumerate(days):
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            raise BotDefinitionError(
                f"{field}.days[{index}]", "must be a day 1..7 (1 = Monday, 7 = Sunday)"
            )
    start = _clock(f"{field}.from", raw.get("from"))
    end = _clock(f"{field}.to", raw.get("to"))
    inside = raw.get("inside")
    return BusinessHours(
        tz=tz,
        days=tuple(sorted(set(days))),
        start=start,
        end=end,
        inside=True if inside is None else _flag(f"{field}.inside", inside),
    )


def _is_zone(tz: str) -> bool:
    if tz in _NOT_ZONES:
        return False
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _clock(field: str, raw: object) -> str:
    if not isinstance(raw, str) or not _HH_MM.fullmatch(raw):
        raise BotDefinitionError(field, "must be a time HH:MM, 00:00 to 23:59")
    return raw


def parse_conditions(raw: object) -> Conditions:
    """A null condition counts as left out, as a form's empty field would send it."""
    if raw is None:
        return Conditions()
    if not isinstance(raw, dict):
        raise BotDefinitionError("conditions", "must be an object")
    _unknown_key("conditions", raw, _CONDITION_KEYS)
    reason: tuple[str, ...] | None = None
    channel_ids: tuple[str, ...] | None = None
    text_contains: tuple[str, ...] | None = None
    min_followers: int | None = None
    if raw.get("reason") is not None:
        reasons = _strings("conditions.reason", raw["reason"])
        for index, value in enumerate(reasons):
            if value not in REASONS:
                raise BotDefinitionError(
                    f"conditions.reason[{index}]", f"must be one of {_one_of(REASONS)}"
                )
        reason = tuple(reasons)
    if raw.get("channel_ids") is not None:
        channel_ids = tuple(_strings("conditions.channel_ids", raw["channel_ids"]))
    if raw.get("text_contains") is not None:
        words = _strings("conditions.text_contains", raw["text_contains"])
        if len(words) > TEXT_CONTAINS_MAX_ENTRIES:
            raise BotDefinitionError(
                "conditions.text_contains", f"at most {TEXT_CONTAINS_MAX_ENTRIES} entries"
            )
        for index, word in enumerate(words):
            if len(word) > TEXT_CONTAINS_MAX_LENGTH:
                raise BotDefinitionError(
                    f"conditions.text_contains[{index}]",
                    f"at most {TEXT_CONTAINS_MAX_LENGTH} characters",
                )
        text_contains = tuple(words)
    if raw.get("min_followers") is not None:
        count = raw["min_followers"]
        # bool is an int in Python, but `true` is no follower count.
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise BotDefinitionError("conditions.min_followers", "must be a whole number ≥ 0")
        min_followers = count
    flags: dict[str, bool | None] = {}
    for key in ("follows_business", "verified", "referral"):
        given = raw.get(key)
        flags[key] = None if given is None else _flag(f"conditions.{key}", given)
    hours = raw.get("business_hours")
    return Conditions(
        reason=reason,
        channel_ids=channel_ids,
        text_contains=text_contains,
        min_followers=min_followers,
        follows_business=flags["follows_business"],
        verified=flags["verified"],
        referral=flags["referral"],
        business_hours=None if hours is None else _business_hours(hours),
    )


def parse_actions(raw: object) -> tuple[Action, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise BotDefinitionError("actions", "must be a list of actions")
    if len(raw) > MAX_ACTIONS:
        raise BotDefinitionError(
            "actions", f"at most {MAX_ACTIONS} actions, and this bot has {len(raw)}"
        )
    return tuple(_action(f"actions[{index}]", item) for index, item in enumerate(raw))


def _action(field: str, raw: object) -> Action:
    if not isinstance(raw, dict):
        raise BotDefinitionError(field, 'must be an object like {"type":"send_message",...}')
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in ACTION_TYPES:
        raise BotDefinitionError(f"{field}.type", f"must be one of {_one_of(ACTION_TYPES)}")
    _unknown_key(field, raw, _ACTION_KEYS[kind])
    if kind == "send_message":
        return SendMessage(_message_text(f"{field}.text", raw.get("text")))
    if kind == "assign":
        return _assign(field, raw)
    if kind == "add_tags":
        return AddTags(_tags(f"{field}.tags", raw.get("tags")))
    return MarkDone()


def _message_text(field: str, raw: object) -> str:
    if not isinstance(raw, str):
        raise BotDefinitionError(field, "must be a string")
    if has_nul(raw):
        raise BotDefinitionError(field, NUL_MESSAGE)
    if not trimmed(raw):
        raise BotDefinitionError(field, "the message is empty")
    # Counted on the template: a long name can still push the sent text over, which the send
    # then refuses as any reply; a template over the limit could never be sent at all.
    size = len(raw.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise BotDefinitionError(
            field, f"the text is {size} bytes of UTF-8; Instagram takes at most {MAX_TEXT_BYTES}"
        )
    for match in _PLACEHOLDER.finditer(raw):
        if match.group(1).strip(" ") not in PLACEHOLDERS:
            known = ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)
            raise BotDefinitionError(field, f"unknown placeholder {match.group(0)}; use {known}")
    return raw


def _assign(field: str, raw: dict[object, object]) -> Assign:
    strategy = raw.get("strategy")
    agent_id = raw.get("agent_id")
    if strategy == "round_robin":
        if agent_id is not None:
            raise BotDefinitionError(
                f"{field}.agent_id", "round_robin picks the agent: leave agent_id out"
            )
        return Assign("round_robin")
    if strategy == "agent":
        if not isinstance(agent_id, str) or not trimmed(agent_id) or has_nul(agent_id):
            raise BotDefinitionError(f"{field}.agent_id", "the id of the agent to assign")
        return Assign("agent", agent_id)
    raise BotDefinitionError(f"{field}.strategy", f"must be one of {_one_of(STRATEGIES)}")


def _tags(field: str, raw: object) -> tuple[str, ...]:
    if not isinstance(raw, list | tuple) or not raw:
        raise BotDefinitionError(field, "must be a non-empty list of tags")
    cleaned: list[str] = []
    for index, tag in enumerate(raw):
        if not isinstance(tag, str):
            raise BotDefinitionError(f"{field}[{index}]", "a tag is a string")
        value = trimmed(tag)
        if not value:
            raise BotDefinitionError(f"{field}[{index}]", "a tag cannot be empty")
        if len(value) > TAG_MAX_LENGTH:
            raise BotDefinitionError(
                f"{field}[{index}]", f"a tag has at most {TAG_MAX_LENGTH} characters"
            )
        if has_nul(value):
            raise BotDefinitionError(f"{field}[{index}]", NUL_MESSAGE)
        if value not in cleaned:
            cleaned.append(value)
    # Counted without repeats: those are what the conversation would carry.
    if len(cleaned) > MAX_TAGS:
        raise BotDefinitionError(field, f"at most {MAX_TAGS} tags, and this has {len(cleaned)}")
    return tuple(cleaned)


def check_bot(trigger: str, conditions: Conditions, actions: tuple[Action, ...]) -> None:
    """The rules across fields, once each field is valid by itself."""
    parse_trigger(trigger)
    if trigger == TRIGGER_WEBHOOK:
        if conditions != Conditions():
            raise BotDefinitionError(
                "conditions", "a capture bot only records what its URL receives: no conditions"
            )
        if actions:
            raise BotDefinitionError(
                "actions", "a capture bot only records what its URL receives: no actions"
            )
        return
    if not actions:
        raise BotDefinitionError("actions", "add at least one action")


@dataclass(frozen=True, slots=True)
class Facts:
    """What a run knows about its triggering event."""

    trigger: str
    reason: str | None  # how the conversation opened: first_message | reopened
    channel_id: str
    text: str | None  # the triggering message's text (None for conversation.closed)
    referral: bool
    follower_count: int | None  # None: Instagram did not share it (also below)
    follows_business: bool | None
    verified: bool | None
    at_ms: int  # when the event happened (UTC epoch ms), for business_hours


_NOT_SHARED = "Instagram did not share it"


def unmet_condition(conditions: Conditions, facts: Facts) -> str | None:
    """None when every condition holds; else why the first one (in field order) does not."""
    c = conditions
    if c.reason is not None and facts.reason not in c.reason:
        if facts.reason is None:
            return "reason: how the conversation opened is not known"
        return f"reason: opened by {facts.reason}"
    if c.channel_ids is not None and facts.channel_id not in c.channel_ids:
        return "channel_ids: the message came to another channel"
    if c.text_contains is not None:
        if facts.text is None:
            return "text_contains: the message has no text"
        text = facts.text.casefold()
        if not any(word.casefold() in text for word in c.text_contains):
            words = ", ".join(repr(word) for word in c.text_contains)
            return f"text_contains: the message contains none of {words}"
    if c.min_followers is not None:
        count = facts.follower_count
        if count is None:
            return f"min_followers: {_NOT_SHARED}"
        if count < c.min_followers:
            noun = "follower" if count == 1 else "followers"
            return f"min_followers: {count} {noun}, fewer than {c.min_followers}"
    if c.follows_business is not None and facts.follows_business is not c.follows_business:
        if facts.follows_business is None:
            return f"follows_business: {_NOT_SHARED}"
        if facts.follows_business:
            return "follows_business: the customer follows the business"
        return "follows_business: the customer does not follow the business"
    if c.verified is not None and facts.verified is not c.verified:
        if facts.verified is None:
            return f"verified: {_NOT_SHARED}"
        if facts.verified:
            return "verified: the customer is verified"
        return "verified: the customer is not verified"
    if c.referral is not None and facts.referral is not c.referral:
        if facts.referral:
            return "referral: the message came from an ad or an ig.me link"
        return "referral: the message did not come from an ad or an ig.me link"
    hours = c.business_hours
    if hours is not None:
        local = datetime.fromtimestamp(facts.at_ms // 1000, ZoneInfo(hours.tz))
        within = _within(hours, local.isoweekday(), f"{local:%H:%M}")
        if within != hours.inside:
            where = "outside" if hours.inside else "inside"
            day = _WEEKDAYS[local.isoweekday() - 1]
            return f"business_hours: {day} {local:%H:%M} {hours.tz} is {where} the hours"
    return None


def _within(hours: BusinessHours, weekday: int, clock: str) -> bool:
    # "HH:MM" strings, zero-padded, compare as the times they name.
    if hours.start == hours.end:  # the whole day: every day listed, at any time
        return weekday in hours.days
    if hours.start < hours.end:
        return weekday in hours.days and hours.start <= clock < hours.end
    # Overnight: the hours after midnight belong to the day the window started on.
    previous = 7 if weekday == 1 else weekday - 1
    return (weekday in hours.days and clock >= hours.start) or (
        previous in hours.days and clock < hours.end
    )


def render_text(template: str, *, name: str | None, username: str | None, customer_id: str) -> str:
    """The text to send: the greeting still reads well when Instagram shared no name."""
    values = {
        "name": name or username or "there",
        "username": username or "",
        "customer_id": customer_id,
    }

    def fill(match: re.Match[str]) -> str:
        return values.get(match.group(1).strip(" "), match.group(0))

    return _PLACEHOLDER.sub(fill, template)
