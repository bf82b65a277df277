"""What /api/v1/webhooks takes: a new webhook, a change, a rotation, a recovery."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    WithJsonSchema,
    field_validator,
)

from convohook.delivery.request import MAX_HEADERS, RESERVED_HEADERS
from convohook.web.api.common import (
    NO_NUL,
    WHOLE,
    RequestBody,
    StrictBody,
    refuse_nul,
)
from convohook.web.rules import WEBHOOK_URL_PATTERN

EventName = Literal[
    "conversation.opened",
    "conversation.closed",
    "conversation.assigned",
    "webhook.disabled",
    "delivery.exhausted",
]
PayloadFormat = Literal["doubletick", "standard"]
SignatureScheme = Literal["hmac", "ed25519"]
Ordering = Literal["none", "fifo"]
AuthType = Literal["basic", "bearer"]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
Url = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        # Published for clients (and schemathesis); web/rules.py enforces it, with messages.
        json_schema_extra={"pattern": WEBHOOK_URL_PATTERN},
        description="http(s)://host[:port][/path…]: a host name (international names may be "
        "written as they are), an IPv4 address or a bracketed IPv6 one; no user name or password",
    ),
]
ChannelId = Annotated[str, Field(pattern=NO_NUL)]
Timeout = Annotated[float, Field(ge=1, le=60, description="seconds before an attempt times out")]
RateLimit = Annotated[float, Field(gt=0, le=10_000, description="attempts per second at most")]
Concurrency = Annotated[int, Field(ge=1, le=1_000, description="attempts in flight at most"), WHOLE]


def _any_case(word: str) -> str:
    # JSON Schema patterns have no case-insensitive flag.
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# What delivery/request.check_custom_headers enforces (web/rules.check_headers), published.
_HEADER_NAME = (
    "^(?!(?:"
    + "|".join(_any_case(name) for name in sorted(RESERVED_HEADERS))
    + ")$)[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
)
Headers = Annotated[
    dict[str, str],
    Field(
        json_schema_extra={
            "maxProperties": MAX_HEADERS,
            "propertyNames": {"pattern": _HEADER_NAME},
            "additionalProperties": {
                "type": "string",
                "maxLength": 4096,
                "pattern": "^[^\\r\\n\\x00]*$",
            },
        },
        description="sent with every attempt; not the signature's, HTTP's own or Authorization "
        "(see `auth`)",
    ),
]


class BasicAuth(StrictBody):
    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=200, pattern=r"^[^:\r\n\x00]*$")
    password: str = Field(max_length=500, pattern=r"^[^\r\n\x00]*$")

    _no_nul = field_validator("username", "password", mode="before")(refuse_nul)


class BearerAuth(StrictBody):
    type: Literal["bearer"]
    # Sent as `Authorization: Bearer <token>`: visible ASCII, one header line.
    token: str = Field(min_length=1, max_length=2000, pattern=r"^[!-~]+$")


Auth = Annotated[BasicAuth | BearerAuth, Field(discriminator="type")]


class WebhookIn(RequestBody):
    model_config = ConfigDict(
        # Conversation events need a channel: either channel_ids has one, or `events` (which
        # defaults to conversation.opened) names operations events only. (Merged with the
        # parent's config.)
        json_schema_extra={
            "anyOf": [
                {"required": ["channel_ids"], "properties": {"channel_ids": {"minItems": 1}}},
                {
                    "required": ["events"],
                    "properties": {
                        "events": {"items": {"enum": ["webhook.disabled", "delivery.exhausted"]}}
                    },
                },
            ]
        }
    )

    name: Name
    url: Url
    channel_type: Literal["INSTAGRAM"] = "INSTAGRAM"
    # Empty only for an operations webhook (webhook.disabled, delivery.exhausted): no channel.
    channel_ids: list[ChannelId] = Field(default_factory=list, max_length=100)
    events: list[EventName] = Field(default=["conversation.opened"], min_length=1)
    enabled: bool = True
    format: PayloadFormat = "doubletick"
    headers: Headers = Field(default_factory=dict)
    auth: Auth | None = None
    timeout_seconds: Timeout | None = None
    signature_scheme: SignatureScheme = "hmac"
    rate_limit_per_second: RateLimit | None = None
    max_concurrency: Concurrency | None = None
    ordering: Ordering = "none"


class WebhookPatch(RequestBody):
    """Any of the fields; absent or null leaves one as it is."""

    name: Name | None = None
    url: Url | None = None
    channel_ids: list[ChannelId] | None = Field(default=None, min_length=1, max_length=100)
    events: list[EventName] | None = Field(default=None, min_length=1)
    enabled: bool | None = None
    format: PayloadFormat | None = None
    headers: Headers | None = None
    auth: Auth | None = None
    remove_auth: bool = False
    timeout_seconds: Timeout | None = None
    rate_limit_per_second: RateLimit | None = None
    max_concurrency: Concurrency | None = None
    remove_limits: bool = False
    ordering: Ordering | None = None


class RotateIn(RequestBody):
    grace_seconds: Annotated[int, WHOLE] = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="how long deliveries are signed with the previous secret too",
    )
    signature_scheme: SignatureScheme | None = Field(
        default=None, description="switch schemes; the webhook's own when absent"
    )


LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: object) -> object:
    """A JSON date-time is a string with its offset: no number, no date alone, no local time
    (whose meaning would be the server's time zone)."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be a date and time with its UTC offset, as a string: "
            "e.g. 2026-11-20T00:00:00Z or 2026-11-20T01:00:00+01:00"
        )
    return value


DateTime = Annotated[
    AwareDatetime,
    # Strict models take no string for a time; this one field takes its RFC 3339 string only.
    Strict(False),
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class RecoverIn(RequestBody):
    since: DateTime = Field(description="resend failed deliveries created at or after this time")

    @property
    def since_ms(self) -> int:
        """In milliseconds, within 1970 to 9999 (UTC): no delivery was made before or will be
        after, so the deliveries meant are the same, and the answer's `since` stays a valid
        date-time with a four-digit year."""
        ms = int(self.since.timestamp() * 1000)
        return min(max(ms, 0), LAST_MS)
