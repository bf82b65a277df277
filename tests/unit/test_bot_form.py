"""Bot Studio's builder form and the JSON the use case takes: a bot's form (its edit page) sends
back the bot as it is, rows left empty are no actions, and an error names the field as the form
does."""

from __future__ import annotations

import pytest

from convohook.domain.bots import action_json, parse_actions, parse_conditions
from convohook.domain.model import Bot
from convohook.usecases.errors import Invalid
from convohook.web.ui.journeys import definition_from_form, field_words, form_of

CONDITIONS = {
    "reason": ["first_message", "reopened"],
    "channel_ids": ["chan_1", "chan_2"],
    "text_contains": ["price", "how much"],
    "min_followers": 0,
    "follows_business": False,
    "verified": True,
    "referral": False,
    "business_hours": {
        "tz": "America/New_York",
        "days": [6, 7],
        "from": "22:00",
        "to": "06:00",
        "inside": False,
    },
}
ACTIONS = [
    {"type": "send_message", "text": "Hi {{name}}!\nBack on Monday."},
    {"type": "assign", "strategy": "agent", "agent_id": "usr_1"},
    {"type": "assign", "strategy": "round_robin"},
    {"type": "add_tags", "tags": ["lead", "weekend"]},
    {"type": "mark_done"},
    {"type": "add_tags", "tags": ["sixth"]},  # more rows than the builder offers at first
]


def bot() -> Bot:
    return Bot(
        id="bot_1",
        org_id="org_1",
        name="Weekend",
        trigger="conversation.opened",
        token="t",
        created_at_ms=0,
        conditions=parse_conditions(CONDITIONS),
        actions=parse_actions(ACTIONS),
    )


def as_posted(form: dict[str, object]) -> dict[str, object]:
    """What a browser posts back: lists stay lists, every other field a string."""
    return {k: v if isinstance(v, list) else str(v) for k, v in form.items()}


def test_a_bots_form_sends_the_bot_back_as_it_is() -> None:
    definition = definition_from_form(as_posted(form_of(bot())))
    assert definition.conditions == CONDITIONS
    assert definition.actions == ACTIONS
    assert parse_conditions(definition.conditions).to_json() == CONDITIONS
    assert [action_json(a) for a in parse_actions(definition.actions)] == ACTIONS


def test_fields_left_empty_say_nothing_and_empty_rows_are_no_actions() -> None:
    form: dict[str, object] = {
        "name": "x",
        "text_contains": " , ",
        "min_followers": " ",
        "verified": "",
        "hours": "",
        "hours_tz": "UTC",
        "action0_type": "",
        "action1_type": "mark_done",
        "action2_type": "",
        "action3_type": "add_tags",
        "action3_tags": " a, ,b ",
        "action3_text": "ignored: not this row's type",
    }
    definition = definition_from_form(form)
    assert definition.conditions == {}
    assert definition.actions == [{"type": "mark_done"}, {"type": "add_tags", "tags": ["a", "b"]}]
    assert definition.rows == [1, 3]
    assert field_words("actions[1].tags[0]", definition.rows) == "Action 4, tags"
    assert field_words("actions[0]", definition.rows) == "Action 2"
    assert field_words("conditions.business_hours.tz", []) == "Business hours, time zone"
    assert field_words("conditions.reason[1]", []) == "Conversation opened by"


def test_a_follower_count_that_is_no_number_is_refused_by_the_form() -> None:
    with pytest.raises(Invalid) as refused:
        definition_from_form({"min_followers": "ten"})
    assert refused.value.field == "conditions.min_followers"
