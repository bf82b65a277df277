"""Logs: one JSON object per line for machines, or plain lines on a terminal.

`CONVOHOOK_LOG_FORMAT` = `auto` (JSON unless stderr is a terminal), `json` or `text`. Log calls
name what they are about with `extra={...}` using `CONTEXT` keys, which JSON lines carry as
fields (and text lines append), so an operator can follow one delivery or one org's channel.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

# What a line can be about; anything else passed in `extra` is not logged.
CONTEXT = (
    "org_id",
    "channel_id",
    "account_id",
    "contact_id",
    "conversation_id",
    "event_id",
    "webhook_id",
    "delivery_id",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    return {key: getattr(record, key) for key in CONTEXT if getattr(record, key, None) is not None}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = context_of(record)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        fields = " ".join(f"{k}={v}" for k, v in context.items())
        return f"{first} [{fields}]{newline}{rest}"


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's too: start it with `log_config=None`) to stderr."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
