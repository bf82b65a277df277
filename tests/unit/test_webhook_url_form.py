"""The form of a webhook URL the OpenAPI document publishes (web/rules.WEBHOOK_URL_PATTERN) and
the one the API and the UI enforce (check_url_form) are one: every URL of the published form is
taken (what schemathesis's positive_data_acceptance relies on), the others are refused, saying
how a URL must look."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convohook.delivery.ssrf import InvalidTarget
from convohook.web.rules import WEBHOOK_URL_PATTERN, check_url_form

# As JSON Schema validators read it: `$` is the very end (Python's also takes a final newline).
PUBLISHED = WEBHOOK_URL_PATTERN.removesuffix("$") + r"\Z"


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(PUBLISHED))
def test_every_url_of_the_published_form_is_taken(url: str) -> None:
    check_url_form(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/ig?x=1#y",
        "HTTPS://EXAMPLE.COM:8443/",
        "http://203.0.113.5:9/hook",
        "http://[2606:4700:4700::1111]/",
        "http://[::1]:8000/",
        "https://bücher.example/hook",  # taken as it is; sent as xn--bcher-kva.example
        "http://localhost",
    ],
)
def test_common_urls_are_taken(url: str) -> None:
    check_url_form(url)
    assert re.fullmatch(WEBHOOK_URL_PATTERN, url) or not url.isascii()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http://exa mple.com/", "spaces or control characters"),
        ("http://a.0/", "not a valid IPv4 address"),
        ("http://2130706433/", "not of the form http(s)://host[:port][/path]"),
        ("http://0x7f.1/", "not of the form"),
        ("http://example.com:0/", "the port from 1 to 65535"),
        ("http://-example.com/", "not of the form"),
        ("http://[fe80::1%25eth0]/", "not of the form"),
    ],
)
def test_other_urls_are_refused_saying_how_one_must_look(url: str, message: str) -> None:
    with pytest.raises(InvalidTarget, match=re.escape(message)):
        check_url_form(url)
