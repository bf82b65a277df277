"""What is checked before a use case runs, shared by the API and the UI (both answer 422 with
the message): the webhook URL's form and the SSRF guard (it resolves the name), custom headers."""

from __future__ import annotations

import re

from yarl import URL

from convohook.delivery.request import check_custom_headers
from convohook.delivery.ssrf import BlockedTarget, InvalidTarget, check_url, is_exempt
from convohook.outbound.resolver import check_target
from convohook.runtime.services import Services
from convohook.web.errors import ApiError

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A last label that starts with a letter: a host whose last label is a number is an IPv4
# address or nothing (ssrf._looks_numeric), and those are written as dotted quads here.
_TOP = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{7}}{_H16}",
        rf"(?:{_H16}:){{1,7}}:",
        *(rf"(?:{_H16}:){{1,{7 - n}}}(?::{_H16}){{1,{n}}}" for n in range(1, 7)),
        rf":(?:(?::{_H16}){{1,7}}|:)",
    ]
)
_HOST = rf"(?:(?:{_LABEL}\.)*{_TOP}\.?|{_OCTET}(?:\.{_OCTET}){{3}}|\[(?:{_IPV6})\])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
# Everything but controls and white space (spelled out: `\s` differs between regex engines).
_REST = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
# The form of a webhook URL, as published in the OpenAPI document. An international host name
# is accepted too: it must match once written in punycode, as yarl sends it.
WEBHOOK_URL_PATTERN = rf"^[Hh][Tt][Tt][Pp][Ss]?://{_HOST}(?::{_PORT})?(?:[/?#]{_REST}*)?$"
_WEBHOOK_URL = re.compile(WEBHOOK_URL_PATTERN)
_AUTHORITY = re.compile(r"([A-Za-z]+://)([^/?#:]*)(.*)", re.DOTALL)


def check_url_form(url: str) -> None:
    """InvalidTarget unless `url` has the published form (check_url says what is wrong first,
    in its own words, for the common mistakes)."""
    check_url(url)
    if _WEBHOOK_URL.fullmatch(url):
        return
    parts = _AUTHORITY.fullmatch(url)
    if parts and not parts[2].isascii():
        punycode = URL(url).raw_host or ""
        if _WEBHOOK_URL.fullmatch(parts[1] + punycode + parts[3]):
            return
    raise InvalidTarget(
        f"webhook URL {url!r} is not of the form http(s)://host[:port][/path]: the host a name "
        "(labels of letters, digits and -, the last one not a number), an IPv4 address like "
        "203.0.113.5 or an IPv6 one in brackets; the port from 1 to 65535"
    )


class TargetRefused(ApiError):
    """The SSRF guard refused the URL's address. The message is for an API client, who runs or
    configures convohook (how to allow such targets); `refused` says what was refused, so the
    UI can put it in a browser user's words."""

    def __init__(self, refused: BlockedTarget) -> None:
        super().__init__(
            422, f"url: {refused}", details=[{"field": "url", "message": str(refused)}]
        )
        self.refused = refused


async def check_webhook_url(svc: Services, url: str) -> None:
    try:
        check_url_form(url)
        if not is_exempt(url, svc.exempt_origins):
            await check_target(
                url,
                allow_private=svc.settings.allow_private_targets,
                allowed_networks=svc.settings.allowed_target_networks,
            )
    except BlockedTarget as exc:
        raise TargetRefused(exc) from exc
    except InvalidTarget as exc:
        raise ApiError.invalid("url", str(exc)) from exc


def check_headers(headers: dict[str, str] | None) -> None:
    problem = check_custom_headers(headers or {})
    if problem is not None:
        raise ApiError.invalid("headers", problem)
