"""The custom headers a webhook may carry, as the OpenAPI document publishes them (WebhookIn's
`headers`: names, values, how many) and as delivery/request.check_custom_headers enforces them
for the API and the UI: one rule, so that schemathesis's generated headers are taken or refused
exactly as the document says."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convohook.delivery.request import MAX_HEADERS, RESERVED_HEADERS, check_custom_headers
from convohook.web.api.webhook_requests import WebhookIn

PUBLISHED: dict[str, Any] = WebhookIn.model_json_schema()["properties"]["headers"]
NAME = PUBLISHED["propertyNames"]["pattern"]
VALUE = PUBLISHED["additionalProperties"]


def _end_of_string(pattern: str) -> str:
    # As JSON Schema validators read `$`: the very end (Python's also takes a final newline).
    return pattern.removesuffix("$") + r"\Z"


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.from_regex(_end_of_string(NAME)),
        st.from_regex(_end_of_string(VALUE["pattern"])).filter(
            lambda v: len(v) <= VALUE["maxLength"]
        ),
        max_size=PUBLISHED["maxProperties"],
    )
)
def test_every_published_header_set_is_taken(headers: dict[str, str]) -> None:
    assert check_custom_headers(headers) is None


@pytest.mark.parametrize("name", [*sorted(RESERVED_HEADERS), "Content-Type", "WEBHOOK-ID"])
def test_reserved_names_are_refused_by_both(name: str) -> None:
    assert not re.fullmatch(NAME, name)
    assert check_custom_headers({name: "x"}) is not None


@pytest.mark.parametrize("name", ["", "Bad Name", "X-Évil", "a:b"])
def test_names_that_are_not_tokens_are_refused_by_both(name: str) -> None:
    assert not re.fullmatch(NAME, name)
    assert check_custom_headers({name: "x"}) is not None


def test_too_many_or_too_long_are_refused_by_both() -> None:
    assert PUBLISHED["maxProperties"] == MAX_HEADERS
    assert check_custom_headers({f"X-{i}": "v" for i in range(MAX_HEADERS + 1)}) is not None
    assert check_custom_headers({"X-Long": "v" * (VALUE["maxLength"] + 1)}) is not None
    assert check_custom_headers({"X-Lines": "a\r\nInjected: yes"}) is not None
