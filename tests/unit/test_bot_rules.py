"""The Bot Studio rules (DESIGN section 7): what a bot may say, each field's refusal named, when
its conditions hold, and how a message is filled in."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from convohook.domain.bots import (
    JOURNEY_TRIGGERS,
    MAX_ACTIONS,
    MAX_TAGS,
    REASONS,
    TAG_MAX_LENGTH,
    TRIGGERS,
    AddTags,
    Assign,
    BotDefinitionError,
    BusinessHours,
    Conditions,
    Facts,
    MarkDone,
    SendMessage,
    action_json,
    action_type,
    check_bot,
    parse_actions,
    parse_conditions,
    parse_trigger,
    render_text,
    unmet_condition,
)

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS: dict[str, object] = {
    "tz": "Europe/Berlin",
    "days": [1, 2, 3, 4, 5],
    "from": "09:00",
    "to": "18:00",
}
OVERNIGHT: dict[str, object] = {"tz": "Europe/Berlin", "days": [5], "from": "22:00", "to": "06:00"}


def berlin_ms(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp() * 1000)


# 2024-06-07 is a Friday; Berlin is then UTC+2.
FRIDAY_NOON = berlin_ms(2024, 6, 7, 12, 0)


def facts(**changes: object) -> Facts:
    base = Facts(
        trigger="message.received",
        reason="first_message",
        channel_id="ch_1",
        text="Hello, what is the price?",
        referral=False,
        follower_count=500,
        follows_business=True,
        verified=False,
        at_ms=FRIDAY_NOON,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def refused_field(call: object, *args: object) -> BotDefinitionError:
    assert callable(call)
    with pytest.raises(BotDefinitionError) as refused:
        call(*args)
    return refused.value


# --- the error ---------------------------------------------------------------------------------


def test_the_error_names_its_field() -> None:
    error = BotDefinitionError("actions[1].text", "the message is empty")
    assert (error.field, error.message) == ("actions[1].text", "the message is empty")
    assert str(error) == "actions[1].text: the message is empty"
    assert isinstance(error, ValueError)


# --- triggers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_each_trigger_is_taken(trigger: str) -> None:
    assert parse_trigger(trigger) == trigger


@pytest.mark.parametrize("raw", [None, "", "conversation.assigned", "Webhook", 1, ["webhook"]])
def test_another_trigger_is_refused_with_the_known_ones(raw: object) -> None:
    error = refused_field(parse_trigger, raw)
    assert error.field == "trigger"
    assert "one of" in error.message
    assert all(trigger in error.message for trigger in TRIGGERS)


# --- conditions: parsing -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}])
def test_no_conditions(raw: object) -> None:
    assert parse_conditions(raw) == Conditions()
    assert Conditions().to_json() == {}


def test_every_condition_parsed() -> None:
    conditions = parse_conditions(
        {
            "reason": ["reopened"],
            "channel_ids": ["ch_1", "ch_2"],
            "text_contains": ["  price ", "cost"],
            "min_followers": 0,
            "follows_business": False,
            "verified": True,
            "referral": True,
            "business_hours": WEEKDAYS,
        }
    )
    assert conditions == Conditions(
        reason=("reopened",),
        channel_ids=("ch_1", "ch_2"),
        text_contains=("price", "cost"),
        min_followers=0,
        follows_business=False,
        verified=True,
        referral=True,
        business_hours=BusinessHours("Europe/Berlin", (1, 2, 3, 4, 5), "09:00", "18:00", True),
    )


def test_conditions_round_trip_in_the_api_shape() -> None:
    conditions = parse_conditions(
        {
            "reason": ["first_message", "reopened"],
            "text_contains": ["price"],
            "min_followers": 1000,
            "verified": False,
            "business_hours": {**OVERNIGHT, "inside": False},
        }
    )
    body = conditions.to_json()
    assert body == {
        "reason": ["first_message", "reopened"],
        "text_contains": ["price"],
        "min_followers": 1000,
        "verified": False,
        "business_hours": {
            "tz": "Europe/Berlin",
            "days": [5],
            "from": "22:00",
            "to": "06:00",
            "inside": False,
        },
    }
    assert parse_conditions(body) == conditions


def test_a_null_condition_is_left_out() -> None:
    assert parse_conditions({"verified": None, "business_hours": None}) == Conditions()


def test_lists_lose_their_repeats_and_days_are_sorted() -> None:
    conditions = parse_conditions(
        {
            "reason": ["reopened", "reopened"],
            "text_contains": ["price", " price"],
            "business_hours": {**WEEKDAYS, "days": [5, 1, 5]},
        }
    )
    assert conditions.reason == ("reopened",)
    assert conditions.text_contains == ("price",)
    assert conditions.business_hours is not None
    assert conditions.business_hours.days == (1, 5)


def test_inside_defaults_to_true() -> None:
    hours = parse_conditions({"business_hours": WEEKDAYS}).business_hours
    assert hours is not None
    assert hours.inside is True


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ([], "conditions", "object"),
        ("reason", "conditions", "object"),
        ({"keyword": ["x"]}, "conditions.keyword", "unknown"),
        ({"reason": "reopened"}, "conditions.reason", "list"),
        ({"reason": []}, "conditions.reason", "at least one"),
        ({"reason": ["closed"]}, "conditions.reason[0]", "first_message"),
        ({"reason": ["reopened", 1]}, "conditions.reason[1]", "string"),
        ({"channel_ids": []}, "conditions.channel_ids", "at least one"),
        ({"channel_ids": ["ch_1", " "]}, "conditions.channel_ids[1]", "blank"),
        ({"channel_ids": ["ch\x001"]}, "conditions.channel_ids[0]", "NUL"),
        ({"channel_ids": {"ch_1": True}}, "conditions.channel_ids", "list"),
        ({"text_contains": []}, "conditions.text_contains", "at least one"),
        ({"text_contains": [" \t"]}, "conditions.text_contains[0]", "blank"),
        ({"text_contains": ["ok", "x" * 101]}, "conditions.text_contains[1]", "100"),
        ({"text_contains": [f"w{i}" for i in range(21)]}, "conditions.text_contains", "20"),
        ({"text_contains": [None]}, "conditions.text_contains[0]", "string"),
        ({"min_followers": -1}, "conditions.min_followers", "≥ 0"),
        ({"min_followers": 1.5}, "conditions.min_followers", "whole number"),
        ({"min_followers": "100"}, "conditions.min_followers", "whole number"),
        ({"min_followers": True}, "conditions.min_followers", "whole number"),
        ({"follows_business": 1}, "conditions.follows_business", "true or false"),
        ({"verified": "true"}, "conditions.verified", "true or false"),
        ({"referral": 0}, "conditions.referral", "true or false"),
        ({"business_hours": "9-18"}, "conditions.business_hours", "object"),
    ],
)
def test_each_bad_condition_is_refused_naming_its_field(
    raw: object, field: str, words: str
) -> None:
    error = refused_field(parse_conditions, raw)
    assert error.field == field
    assert words in error.message


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"tz": "Mars/Olympus"}, "tz", "IANA"),
        ({"tz": "utc"}, "tz", "IANA"),
        ({"tz": ""}, "tz", "IANA"),
        ({"tz": "../../etc/passwd"}, "tz", "IANA"),
        ({"tz": "localtime"}, "tz", "IANA"),
        ({"tz": 1}, "tz", "IANA"),
        ({"tz": None}, "tz", "IANA"),
        ({"days": []}, "days", "non-empty"),
        ({"days": 1}, "days", "list"),
        ({"days": None}, "days", "list"),
        ({"days": [1, 8]}, "days[1]", "1..7"),
        ({"days": [0]}, "days[0]", "1..7"),
        ({"days": [True]}, "days[0]", "1..7"),
        ({"days": ["1"]}, "days[0]", "1..7"),
        ({"days": [1.0]}, "days[0]", "1..7"),
        ({"from": "9:00"}, "from", "HH:MM"),
        ({"from": "24:00"}, "from", "HH:MM"),
        ({"from": None}, "from", "HH:MM"),
        ({"to": "18:60"}, "to", "HH:MM"),
        ({"to": "18:00\n"}, "to", "HH:MM"),
        ({"to": "18:00:00"}, "to", "HH:MM"),
        ({"to": 18}, "to", "HH:MM"),
        ({"inside": "no"}, "inside", "true or false"),
        ({"inside": 0}, "inside", "true or false"),
        ({"until": "18:00"}, "until", "unknown"),
    ],
)
def test_each_bad_business_hours_field_is_refused_naming_it(
    change: dict[str, object], field: str, words: str
) -> None:
    error = refused_field(parse_conditions, {"business_hours": {**WEEKDAYS, **change}})
    assert error.field == f"conditions.business_hours.{field}"
    assert words in error.message


def test_the_boundary_values_are_taken() -> None:
    conditions = parse_conditions(
        {
            "text_contains": [f"w{i}" for i in range(19)] + ["x" * 100],
            "business_hours": {"tz": "UTC", "days": [1, 7], "from": "00:00", "to": "23:59"},
        }
    )
    assert conditions.text_contains is not None
    assert len(conditions.text_contains) == 20


# --- actions: parsing --------------------------------------------------------------------------


def test_no_actions() -> None:
    assert parse_actions(None) == ()
    assert parse_actions([]) == ()


def test_every_action_parsed_and_round_tripped() -> None:
    raw = [
        {"type": "send_message", "text": "Hi {{ name }}, you are {{username}} ({{customer_id}})"},
        {"type": "assign", "strategy": "round_robin"},
        {"type": "assign", "strategy": "agent", "agent_id": "usr_1"},
        {"type": "add_tags", "tags": ["lead", "vip"]},
        {"type": "mark_done"},
    ]
    actions = parse_actions(raw)
    assert actions == (
        SendMessage("Hi {{ name }}, you are {{username}} ({{customer_id}})"),
        Assign("round_robin"),
        Assign("agent", "usr_1"),
        AddTags(("lead", "vip")),
        MarkDone(),
    )
    assert [action_type(action) for action in actions] == [
        "send_message",
        "assign",
        "assign",
        "add_tags",
        "mark_done",
    ]
    assert [action_json(action) for action in actions] == raw
    assert parse_actions([action_json(action) for action in actions]) == actions


def test_tags_are_trimmed_without_repeats_in_order() -> None:
    (action,) = parse_actions([{"type": "add_tags", "tags": [" vip", "lead", "vip ", "lead"]}])
    assert action == AddTags(("vip", "lead"))


def test_the_action_limits_are_taken_at_their_edges() -> None:
    assert len(parse_actions([{"type": "mark_done"}] * MAX_ACTIONS)) == MAX_ACTIONS
    tags = [f"t{i}" for i in range(MAX_TAGS - 1)] + ["x" * TAG_MAX_LENGTH]
    assert parse_actions([{"type": "add_tags", "tags": tags}]) == (AddTags(tuple(tags)),)
    # Repeats do not count towards the limit: the conversation would carry each once.
    assert parse_actions([{"type": "add_tags", "tags": [*tags, "t0"]}]) == (AddTags(tuple(tags)),)
    text = "é" * 500  # 1000 bytes
    assert parse_actions([{"type": "send_message", "text": text}]) == (SendMessage(text),)


def send(text: object) -> list[object]:
    return [{"type": "mark_done"}, {"type": "send_message", "text": text}]


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"type": "mark_done"}, "actions", "list"),
        ("mark_done", "actions", "list"),
        ([{"type": "mark_done"}] * (MAX_ACTIONS + 1), "actions", f"at most {MAX_ACTIONS}"),
        (["mark_done"], "actions[0]", "object"),
        ([{}], "actions[0].type", "send_message"),
        ([{"type": "mark_done"}, {"type": "close"}], "actions[1].type", "one of"),
        ([{"type": None}], "actions[0].type", "one of"),
        ([{"type": "mark_done", "reason": "bot"}], "actions[0].reason", "unknown"),
        (
            [{"type": "send_message", "text": "Hi", "tag": "HUMAN_AGENT"}],
            "actions[0].tag",
            "unknown",
        ),
        (send(None), "actions[1].text", "string"),
        (send(["Hi"]), "actions[1].text", "string"),
        (send(""), "actions[1].text", "empty"),
        (send(" \n\t"), "actions[1].text", "empty"),
        (send("Hi\x00"), "actions[1].text", "NUL"),
        (send("a" * 1001), "actions[1].text", "1001 bytes"),
        (send("é" * 501), "actions[1].text", "1002 bytes"),
        (send("Hi {{first_name}}"), "actions[1].text", "{{first_name}}"),
        (send("Hi {{Name}}"), "actions[1].text", "unknown placeholder"),
        (send("Hi {{}}"), "actions[1].text", "unknown placeholder"),
        (send("Hi {{name}} {{ email }}"), "actions[1].text", "{{ email }}"),
        (send("Hi {{na\nme}}"), "actions[1].text", "unknown placeholder"),
        ([{"type": "assign"}], "actions[0].strategy", "round_robin"),
        ([{"type": "assign", "strategy": "random"}], "actions[0].strategy", "one of"),
        (
            [{"type": "assign", "strategy": "round_robin", "agent_id": "usr_1"}],
            "actions[0].agent_id",
            "leave agent_id out",
        ),
        ([{"type": "assign", "strategy": "agent"}], "actions[0].agent_id", "agent"),
        ([{"type": "assign", "strategy": "agent", "agent_id": ""}], "actions[0].agent_id", "agent"),
        (
            [{"type": "assign", "strategy": "agent", "agent_id": " "}],
            "actions[0].agent_id",
            "agent",
        ),
        ([{"type": "assign", "strategy": "agent", "agent_id": 7}], "actions[0].agent_id", "agent"),
        (
            [{"type": "assign", "strategy": "agent", "agent_id": "u\x00"}],
            "actions[0].agent_id",
            "agent",
        ),
        ([{"type": "add_tags"}], "actions[0].tags", "list"),
        ([{"type": "add_tags", "tags": []}], "actions[0].tags", "non-empty"),
        ([{"type": "add_tags", "tags": "vip"}], "actions[0].tags", "list"),
        ([{"type": "add_tags", "tags": ["vip", " "]}], "actions[0].tags[1]", "empty"),
        ([{"type": "add_tags", "tags": [1]}], "actions[0].tags[0]", "string"),
        ([{"type": "add_tags", "tags": ["x" * (TAG_MAX_LENGTH + 1)]}], "actions[0].tags[0]", "50"),
        ([{"type": "add_tags", "tags": ["v\x00ip"]}], "actions[0].tags[0]", "NUL"),
        (
            [{"type": "add_tags", "tags": [f"t{i}" for i in range(MAX_TAGS + 1)]}],
            "actions[0].tags",
            "at most 20",
        ),
    ],
)
def test_each_bad_action_is_refused_naming_its_field(raw: object, field: str, words: str) -> None:
    error = refused_field(parse_actions, raw)
    assert error.field == field
    assert words in error.message


# --- rules across fields -----------------------------------------------------------------------


def test_a_capture_bot_takes_no_conditions_nor_actions() -> None:
    check_bot("webhook", Conditions(), ())
    error = refused_field(check_bot, "webhook", Conditions(verified=True), ())
    assert error.field == "conditions"
    assert "capture" in error.message
    error = refused_field(check_bot, "webhook", Conditions(), (MarkDone(),))
    assert error.field == "actions"
    assert "capture" in error.message


@pytest.mark.parametrize("trigger", JOURNEY_TRIGGERS)
def test_a_journey_bot_needs_an_action(trigger: str) -> None:
    check_bot(trigger, Conditions(reason=("reopened",)), (MarkDone(),))
    error = refused_field(check_bot, trigger, Conditions(), ())
    assert (error.field, error.message) == ("actions", "add at least one action")


def test_text_contains_on_a_close_holds_never_as_a_close_has_no_message() -> None:
    # Accepted (the API's document cannot say otherwise per trigger), and false when it runs.
    conditions = parse_conditions({"text_contains": ["price"]})
    check_bot("conversation.closed", conditions, (MarkDone(),))
    unmet = unmet_condition(conditions, facts(trigger="conversation.closed", text=None))
    assert unmet is not None
    assert unmet.startswith("text_contains")


def test_from_equal_to_to_is_the_whole_day_of_the_days_listed() -> None:
    conditions = parse_conditions(
        {"business_hours": {"tz": "UTC", "days": [1], "from": "09:00", "to": "09:00"}}
    )
    monday_night = int(datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp() * 1000)
    tuesday_morning = int(datetime(2026, 12, 1, 3, 0, tzinfo=UTC).timestamp() * 1000)
    assert unmet_condition(conditions, facts(at_ms=monday_night)) is None
    assert unmet_condition(conditions, facts(at_ms=tuesday_morning)) is not None


def test_check_bot_refuses_an_unknown_trigger() -> None:
    assert refused_field(check_bot, "sometimes", Conditions(), (MarkDone(),)).field == "trigger"


# --- conditions: holding -----------------------------------------------------------------------


def test_no_conditions_always_hold() -> None:
    assert unmet_condition(Conditions(), facts()) is None
    assert unmet_condition(Conditions(), facts(reason=None, text=None, verified=None)) is None


def test_reason() -> None:
    conditions = Conditions(reason=("reopened",))
    assert unmet_condition(conditions, facts(reason="reopened")) is None
    assert unmet_condition(conditions, facts()) == "reason: opened by first_message"
    assert unmet_condition(Conditions(reason=REASONS), facts()) is None
    why = unmet_condition(conditions, facts(reason=None))
    assert why is not None
    assert why.startswith("reason: ")


def test_channel_ids() -> None:
    conditions = Conditions(channel_ids=("ch_1", "ch_2"))
    assert unmet_condition(conditions, facts(channel_id="ch_2")) is None
    assert (
        unmet_condition(conditions, facts(channel_id="ch_3"))
        == "channel_ids: the message came to another channel"
    )


def test_text_contains_any_word_case_insensitively() -> None:
    conditions = Conditions(text_contains=("price", "cost"))
    assert unmet_condition(conditions, facts(text="what does it COST")) is None
    assert unmet_condition(Conditions(text_contains=("pricing",)), facts(text="PRICING?")) is None
    # casefold, not lower: "ß" is "ss" to it.
    assert unmet_condition(Conditions(text_contains=("strasse",)), facts(text="Straße")) is None
    assert (
        unmet_condition(conditions, facts(text="hello"))
        == "text_contains: the message contains none of 'price', 'cost'"
    )
    why = unmet_condition(conditions, facts(text=None))
    assert why is not None
    assert why.startswith("text_contains: ")


def test_min_followers() -> None:
    conditions = Conditions(min_followers=1000)
    assert unmet_condition(conditions, facts(follower_count=1000)) is None
    assert unmet_condition(conditions, facts(follower_count=50_000)) is None
    assert (
        unmet_condition(conditions, facts(follower_count=120))
        == "min_followers: 120 followers, fewer than 1000"
    )
    assert (
        unmet_condition(conditions, facts(follower_count=None))
        == "min_followers: Instagram did not share it"
    )
    # Even "at least 0" needs the count: a field Instagram did not share is false.
    assert unmet_condition(Conditions(min_followers=0), facts(follower_count=None)) is not None


@pytest.mark.parametrize("key", ["follows_business", "verified"])
def test_profile_flags(key: str) -> None:
    for wanted in (True, False):
        conditions = Conditions(**{key: wanted})  # type: ignore[arg-type]
        assert unmet_condition(conditions, facts(**{key: wanted})) is None
        why = unmet_condition(conditions, facts(**{key: not wanted}))
        assert why is not None
        assert why.startswith(f"{key}: the customer ")
        assert (
            unmet_condition(conditions, facts(**{key: None}))
            == f"{key}: Instagram did not share it"
        )


def test_referral() -> None:
    assert unmet_condition(Conditions(referral=True), facts(referral=True)) is None
    assert unmet_condition(Conditions(referral=False), facts(referral=False)) is None
    assert (
        unmet_condition(Conditions(referral=True), facts(referral=False))
        == "referral: the message did not come from an ad or an ig.me link"
    )
    why = unmet_condition(Conditions(referral=False), facts(referral=True))
    assert why is not None
    assert why.startswith("referral: ")


def test_the_first_unmet_condition_in_field_order_is_named() -> None:
    conditions = Conditions(
        reason=("reopened",),
        min_followers=10_000,
        verified=True,
        business_hours=BusinessHours("UTC", (7,), "09:00", "10:00", True),
    )
    why = unmet_condition(conditions, facts())
    assert why is not None
    assert why.startswith("reason: ")
    why = unmet_condition(conditions, facts(reason="reopened"))
    assert why is not None
    assert why.startswith("min_followers: ")
    why = unmet_condition(conditions, facts(reason="reopened", follower_count=10_000))
    assert why is not None
    assert why.startswith("verified: ")


# --- business hours ----------------------------------------------------------------------------


def hours(raw: dict[str, object]) -> Conditions:
    return parse_conditions({"business_hours": raw})


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ((2024, 6, 7, 12, 0), True),  # Friday noon
        ((2024, 6, 3, 9, 0), True),  # Monday, the first minute
        ((2024, 6, 7, 17, 59), True),  # Friday, the last minute
        ((2024, 6, 7, 18, 0), False),  # the end is not in the hours
        ((2024, 6, 7, 8, 59), False),
        ((2024, 6, 8, 12, 0), False),  # Saturday
        ((2024, 6, 9, 12, 0), False),  # Sunday
        ((2024, 1, 15, 9, 30), True),  # a Monday in winter, UTC+1
    ],
)
def test_business_hours_in_local_time(at: tuple[int, int, int, int, int], inside: bool) -> None:
    why = unmet_condition(hours(WEEKDAYS), facts(at_ms=berlin_ms(*at)))
    assert (why is None) is inside


def test_business_hours_are_local_not_utc() -> None:
    # 07:30 UTC on a Friday in June is 09:30 in Berlin: inside, though 07:30 is not.
    at_ms = int(datetime(2024, 6, 7, 7, 30, tzinfo=UTC).timestamp() * 1000)
    assert unmet_condition(hours(WEEKDAYS), facts(at_ms=at_ms)) is None
    assert unmet_condition(hours({**WEEKDAYS, "tz": "UTC"}), facts(at_ms=at_ms)) is not None
    # 23:30 UTC on a Sunday is already Monday 08:30 in Tokyo.
    sunday = int(datetime(2024, 6, 9, 23, 30, tzinfo=UTC).timestamp() * 1000)
    tokyo: dict[str, object] = {"tz": "Asia/Tokyo", "days": [1], "from": "08:00", "to": "09:00"}
    assert unmet_condition(hours(tokyo), facts(at_ms=sunday)) is None


def test_business_hours_say_when_and_where() -> None:
    saturday = berlin_ms(2024, 6, 8, 10, 15)
    assert (
        unmet_condition(hours(WEEKDAYS), facts(at_ms=saturday))
        == "business_hours: Saturday 10:15 Europe/Berlin is outside the hours"
    )


def test_inside_false_holds_outside_the_hours() -> None:
    after_hours = hours({**WEEKDAYS, "inside": False})
    assert unmet_condition(after_hours, facts(at_ms=berlin_ms(2024, 6, 8, 10, 15))) is None
    assert (
        unmet_condition(after_hours, facts(at_ms=FRIDAY_NOON))
        == "business_hours: Friday 12:00 Europe/Berlin is inside the hours"
    )


@pytest.mark.parametrize(
    ("at", "inside"),
    [
        ((2024, 6, 7, 22, 0), True),  # Friday night, from the start
        ((2024, 6, 7, 23, 59), True),
        ((2024, 6, 8, 0, 0), True),  # after midnight, Saturday: the window started Friday
        ((2024, 6, 8, 5, 59), True),
        ((2024, 6, 8, 6, 0), False),  # the end is not in the hours
        ((2024, 6, 7, 21, 59), False),
        ((2024, 6, 7, 3, 0), False),  # Friday early: Thursday's window, and Thursday is not in
        ((2024, 6, 8, 22, 30), False),  # Saturday night: Saturday is not in
    ],
)
def test_overnight_hours_belong_to_the_day_they_start(
    at: tuple[int, int, int, int, int], inside: bool
) -> None:
    why = unmet_condition(hours(OVERNIGHT), facts(at_ms=berlin_ms(*at)))
    assert (why is None) is inside


def test_an_overnight_window_from_sunday_runs_into_monday() -> None:
    sunday_night: dict[str, object] = {
        "tz": "Europe/Berlin",
        "days": [7],
        "from": "23:00",
        "to": "02:00",
    }
    monday_early = berlin_ms(2024, 6, 10, 1, 0)
    assert unmet_condition(hours(sunday_night), facts(at_ms=monday_early)) is None
    assert (
        unmet_condition(hours(sunday_night), facts(at_ms=berlin_ms(2024, 6, 11, 1, 0))) is not None
    )


# --- rendering ---------------------------------------------------------------------------------


def test_placeholders_are_filled_in() -> None:
    template = "Hi {{name}} ({{ username }}, {{customer_id}})"
    assert (
        render_text(template, name="Ana", username="ana.k", customer_id="cus_1")
        == "Hi Ana (ana.k, cus_1)"
    )


@pytest.mark.parametrize(
    ("name", "username", "text"),
    [
        ("Ana", "ana.k", "Hi Ana! @ana.k"),
        (None, "ana.k", "Hi ana.k! @ana.k"),
        ("", "ana.k", "Hi ana.k! @ana.k"),
        (None, None, "Hi there! @"),
    ],
)
def test_a_missing_name_falls_back(name: str | None, username: str | None, text: str) -> None:
    assert (
        render_text("Hi {{name}}! @{{username}}", name=name, username=username, customer_id="c")
        == text
    )


def test_text_without_placeholders_is_sent_as_written() -> None:
    text = "Price: {not a placeholder} {{ and a lone brace"
    assert render_text(text, name="Ana", username=None, customer_id="c") == text
