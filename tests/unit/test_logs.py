"""Log lines: JSON with the context named in `extra`, or text with it appended."""

from __future__ import annotations

import json
import logging
import sys

from convohook.runtime.logs import JsonFormatter, TextFormatter


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "convohook.x", logging.WARNING, __file__, 1, "sent %s", ("d1",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_carries_its_context_and_nothing_else() -> None:
    line = json.loads(
        JsonFormatter().format(_record(delivery_id="msg_1", org_id="org_1", password="x"))
    )
    assert line["level"] == "warning"
    assert line["logger"] == "convohook.x"
    assert line["message"] == "sent d1"
    assert (line["delivery_id"], line["org_id"]) == ("msg_1", "org_1")
    assert "password" not in line  # only the known context keys
    assert line["time"].endswith("+00:00")


def test_a_json_line_holds_the_traceback_in_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text  # still one line
    assert "ValueError: boom" in json.loads(text)["exception"]


def test_a_text_line_appends_its_context() -> None:
    text = TextFormatter().format(_record(webhook_id="wh_1"))
    assert text.endswith("WARNING convohook.x: sent d1 [webhook_id=wh_1]")
    assert "[" not in TextFormatter().format(_record())
