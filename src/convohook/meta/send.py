"""The Instagram Send API's answers, understood (pure): sent, worth another try, refused, or
unknown. What decides between them is whether the message may have reached Meta: only an
answer that says it did not (429, 5xx, a refused connection, a transient Graph error) is tried
again by itself; a timeout or a dropped connection after the request went out is `unknown`,
because sending again could make the customer read it twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from convohook.meta.graph import RETRYABLE_ERROR_CODES, redact

_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Sent:
    mid: str


@dataclass(frozen=True, slots=True)
class TryAgain:
    """Certainly not delivered, and later may work."""

    reason: str
    status_code: int | None = None
    retry_after: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Meta said no (a bad token, the window closed, a blocked user): not sent."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unknown:
    """The request may have reached Meta: never repeated by itself."""

    reason: str


SendOutcome = Sent | TryAgain | Refused | Unknown


def outcome_of_answer(
    status: int, body: bytes | None, token: str, retry_after: str | None = None
) -> SendOutcome:
    data = _json_object(body)
    if 200 <= status < 300:
        mid = data.get("message_id") if data is not None else None
        if isinstance(mid, str) and mid:
            return Sent(mid)
        # Meta took it (2xx) but said nothing we can match an echo with: it was sent, as far
        # as anyone can tell, and only a person should decide to send it again.
        return Unknown(f"the Send API answered {status} without a message_id")
    error = data.get("error") if data is not None else None
    if not isinstance(error, dict):
        error = {}
    reason = _reason(status, error, body, token)
    code = error.get("code")
    if status == 429 or status >= 500:
        return TryAgain(reason, status, retry_after)
    if code in RETRYABLE_ERROR_CODES or error.get("is_transient") is True:
        return TryAgain(reason, status, retry_after)
    return Refused(reason)


def _reason(status: int, error: dict[str, Any], body: bytes | None, token: str) -> str:
    message = error.get("message")
    if not isinstance(message, str) or not message:
        text = (body or b"").decode("utf-8", errors="replace").strip()
        return _cut(redact(f"the Send API answered {status}: {' '.join(text.split())}", token))
    details = [f"HTTP {status}"]
    for key, label in (("type", ""), ("code", "code "), ("error_subcode", "subcode ")):
        if error.get(key) is not None:
            details.append(f"{label}{error[key]}")
    if isinstance(error.get("fbtrace_id"), str):
        details.append(f"fbtrace_id {error['fbtrace_id']}")
    return _cut(redact(f"{message} ({', '.join(details)})", token))


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"
