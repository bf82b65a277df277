"""The Instagram User Profile API's answers, understood (pure): a profile, or why there is none.

The client (`outbound/graph_client.py`) raises exactly one exception type, ProfileUnavailable,
for every way a lookup can fail, because the profile enricher gathers many lookups at once and
one stray exception would fail the whole batch. Whether a failure is worth retrying is decided
here, where Meta's answer is understood, so the caller only has to honour `retryable` within its
deadline. The access token travels in the query string (the API's contract), so every text made
here passes through `redact`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

import orjson

from convohook.domain.payload import CustomerProfile

GRAPH_API_URL = "https://graph.instagram.com/v24.0"
# Name and username for the payload; the rest for bots' conditions (DESIGN section 7).
PROFILE_FIELDS = "name,username,follower_count,is_user_follow_business,is_verified_user"

# Graph error codes that mean "later may work": unknown/service errors and the rate limits.
RETRYABLE_ERROR_CODES = frozenset({1, 2, 4, 17, 32, 613})
# A profile answer is a few hundred bytes; anything far bigger is not the Graph API talking.
MAX_BODY_BYTES = 64 * 1024
_MAX_REASON_CHARS = 300
_REDACTED = "[redacted]"


def default_graph_api_url() -> str:
    """Instagram's Graph API base, version included (CONVOHOOK_GRAPH_API_URL overrides it)."""
    return GRAPH_API_URL


class ProfileUnavailable(Exception):
    """A profile lookup failed; `reason` is safe to log (it never contains the access token)."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable

    def __repr__(self) -> str:
        return f"ProfileUnavailable({self.reason!r}, retryable={self.retryable})"


def invalid_url(exc: Exception, token: str) -> ProfileUnavailable:
    return ProfileUnavailable(
        f"invalid Graph API URL: {redact(str(exc), token)}; check CONVOHOOK_GRAPH_API_URL",
        retryable=False,
    )


def profile_from_body(igsid: str, body: bytes | None, token: str) -> CustomerProfile:
    data = _json_object(body)
    if data is None:
        # A 200 that is not a JSON object is a proxy or a misconfigured URL, not Instagram's
        # verdict on this customer; retrying within the deadline costs little.
        raise ProfileUnavailable(
            f"Graph API answered 200 without a JSON object for IGSID {igsid}: "
            f"{_snippet(body, token)}; check CONVOHOOK_GRAPH_API_URL",
            retryable=True,
        )
    username = data.get("username")
    if not isinstance(username, str) or not username.strip():
        # Asking again will not make Instagram know a username it did not send.
        present = ", ".join(sorted(str(key) for key in data)) or "none"
        raise ProfileUnavailable(
            f"Graph API returned no username for IGSID {igsid} (fields present: {present})",
            retryable=False,
        )
    name = data.get("name")
    # Instagram sends null or leaves `name` out when the customer set none; blank is the same.
    display = name if isinstance(name, str) and name.strip() else None
    followers = data.get("follower_count")
    return CustomerProfile(
        username=username,
        name=display,
        # Left out when the customer does not share them; anything malformed counts as that.
        follower_count=followers
        if isinstance(followers, int) and not isinstance(followers, bool) and followers >= 0
        else None,
        is_user_follow_business=_flag(data.get("is_user_follow_business")),
        is_verified_user=_flag(data.get("is_verified_user")),
    )


def _flag(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def error_from_status(status: int, body: bytes | None, token: str) -> ProfileUnavailable:
    error = _graph_error(body)
    retryable = status >= 500 or status == 429
    if error is None:
        return ProfileUnavailable(
            f"Graph API answered {status}: {_snippet(body, token)}", retryable=retryable
        )
    code = error.get("code")
    subcode = error.get("error_subcode")
    if code in RETRYABLE_ERROR_CODES or error.get("is_transient") is True:
        retryable = True
    parts = [str(error.get("type") or "error")]
    if code is not None:
        parts.append(f"code {code}")
    if subcode is not None:
        parts.append(f"subcode {subcode}")
    message = redact(str(error.get("message") or "no message"), token)
    trace = error.get("fbtrace_id")
    suffix = f" [fbtrace_id {trace}]" if isinstance(trace, str) else ""
    reason = f"Graph API answered {status} ({', '.join(parts)}): {message}{suffix}"
    return ProfileUnavailable(_truncate(reason), retryable=retryable)


def _graph_error(body: bytes | None) -> dict[str, Any] | None:
    data = _json_object(body)
    error = data.get("error") if data is not None else None
    return error if isinstance(error, dict) else None


def _json_object(body: bytes | None) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _snippet(body: bytes | None, token: str) -> str:
    if body is None:
        return f"(body larger than {MAX_BODY_BYTES} bytes)"
    if not body:
        return "(empty body)"
    text = body.decode("utf-8", errors="replace").strip()
    return _truncate(redact(" ".join(text.split()), token))


def redact(text: str, token: str) -> str:
    if not token:
        return text
    # The token may come back raw, or as aiohttp/yarl wrote it into a URL.
    for form in {token, quote(token, safe=""), quote_plus(token), quote(token)}:
        text = text.replace(form, _REDACTED)
    return text


def _truncate(text: str) -> str:
    if len(text) <= _MAX_REASON_CHARS:
        return text
    return text[: _MAX_REASON_CHARS - 1] + "…"
