"""The reply rules (DESIGN section 7) at their edges, and the Send API's answers understood."""

from __future__ import annotations

import orjson
import pytest

from convohook.domain.replies import (
    HUMAN_AGENT_WINDOW_MS,
    STANDARD_WINDOW_MS,
    ReplyRefused,
    WindowState,
    check_reply,
    reply_window,
    send_body,
)
from convohook.meta.send import Refused, Sent, TryAgain, Unknown, outcome_of_answer

T = 1_700_000_000_000


@pytest.mark.parametrize(
    ("elapsed", "state", "until"),
    [
        (0, WindowState.OPEN, T + STANDARD_WINDOW_MS),
        (STANDARD_WINDOW_MS - 1, WindowState.OPEN, T + STANDARD_WINDOW_MS),
        (STANDARD_WINDOW_MS, WindowState.HUMAN_AGENT, T + HUMAN_AGENT_WINDOW_MS),
        (HUMAN_AGENT_WINDOW_MS - 1, WindowState.HUMAN_AGENT, T + HUMAN_AGENT_WINDOW_MS),
        (HUMAN_AGENT_WINDOW_MS, WindowState.CLOSED, None),
        (-5_000, WindowState.OPEN, T + STANDARD_WINDOW_MS),  # a clock a little behind Meta's
    ],
)
def test_the_window_at_its_edges(elapsed: int, state: WindowState, until: int | None) -> None:
    window = reply_window(T, T + elapsed)
    assert (window.state, window.until_ms, window.last_customer_message_ms) == (state, until, T)


def test_a_customer_who_never_wrote_cannot_be_written_to() -> None:
    window = reply_window(None, T)
    assert (window.state, window.until_ms) == (WindowState.CLOSED, None)
    assert "never written" in window.reason
    with pytest.raises(ReplyRefused) as refused:
        check_reply("Hi", human_agent=True, window=window)
    assert refused.value.field == "text"


def test_size_is_counted_in_utf8_bytes() -> None:
    window = reply_window(T, T)
    check_reply("a" * 1000, human_agent=False, window=window)
    check_reply("é" * 500, human_agent=False, window=window)
    for text in ("a" * 1001, "é" * 501, "😀" * 251):
        with pytest.raises(ReplyRefused, match="at most 1000") as refused:
            check_reply(text, human_agent=False, window=window)
        assert refused.value.field == "text"
    for text in ("", "   ", "\n\t"):
        with pytest.raises(ReplyRefused, match="empty"):
            check_reply(text, human_agent=False, window=window)


def test_after_24_hours_only_a_persons_reply() -> None:
    window = reply_window(T, T + STANDARD_WINDOW_MS)
    with pytest.raises(ReplyRefused, match="human agent") as refused:
        check_reply("Sorry", human_agent=False, window=window)
    assert refused.value.field == "human_agent"
    check_reply("Sorry", human_agent=True, window=window)
    with pytest.raises(ReplyRefused, match="bot"):
        check_reply("Sorry", human_agent=True, window=window, by_bot=True)
    with pytest.raises(ReplyRefused, match="7 days"):
        check_reply("Sorry", human_agent=True, window=reply_window(T, T + HUMAN_AGENT_WINDOW_MS))


def test_the_send_body_tags_a_human_agents_reply() -> None:
    assert send_body("123", "Hi", human_agent=False) == {
        "recipient": {"id": "123"},
        "message": {"text": "Hi"},
    }
    assert send_body("123", "Hi", human_agent=True) == {
        "recipient": {"id": "123"},
        "message": {"text": "Hi"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }


def _error(message: str, code: int, **more: object) -> bytes:
    return orjson.dumps(
        {"error": {"message": message, "type": "OAuthException", "code": code} | more}
    )


def test_the_send_apis_answers() -> None:
    ok = orjson.dumps({"recipient_id": "123", "message_id": "aWdf_mid"})
    assert outcome_of_answer(200, ok, "tok") == Sent("aWdf_mid")
    assert isinstance(outcome_of_answer(200, b"{}", "tok"), Unknown)
    throttled = outcome_of_answer(
        429, _error("(#4) Application request limit reached", 4), "IGAA-tok", "7"
    )
    assert throttled == TryAgain(
        "(#4) Application request limit reached (HTTP 429, OAuthException, code 4)", 429, "7"
    )
    assert isinstance(outcome_of_answer(500, b"oops", "tok"), TryAgain)
    assert isinstance(outcome_of_answer(503, None, "tok"), TryAgain)
    # A transient Graph error is worth another try whatever its status.
    assert isinstance(
        outcome_of_answer(400, _error("Temporary", 2, is_transient=True), "IGAA-tok"), TryAgain
    )
    refused = outcome_of_answer(
        400,
        _error("Invalid OAuth access token tok-secret", 190, error_subcode=463, fbtrace_id="AbC"),
        "tok-secret",
    )
    assert refused == Refused(
        "Invalid OAuth access token [redacted] (HTTP 400, OAuthException, code 190, "
        "subcode 463, fbtrace_id AbC)"
    )
    assert outcome_of_answer(403, b"<html>no</html>", "IGAA-tok") == Refused(
        "the Send API answered 403: <html>no</html>"
    )
