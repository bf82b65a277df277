"""A new channel's rules live in its use case (connect_channel), for every door: the API (whose
request model publishes the same limits) and the UI's form, which has no model of its own."""

from __future__ import annotations

import pytest

from convohook.usecases.channels import NewChannel, check_new_channel
from convohook.usecases.errors import Invalid

GOOD = {"handle": "acme_store", "account_id": "17841400000000001", "access_token": "IGAA"}


def test_a_good_channel_passes() -> None:
    check_new_channel(NewChannel(**GOOD))


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("handle", "", "required"),
        ("handle", "h" * 101, "at most 100 characters"),
        ("handle", "acme\x00", "must not contain NUL"),
        ("account_id", "", "required"),
        ("account_id", "1784 1400", "letters, digits, _ and - only"),
        ("account_id", "1" * 65, "at most 64 characters"),
        ("access_token", "", "required"),
        ("access_token", "t" * 2049, "at most 2048 characters"),
    ],
)
def test_each_broken_rule_names_its_field(field: str, value: str, problem: str) -> None:
    with pytest.raises(Invalid) as refused:
        check_new_channel(NewChannel(**{**GOOD, field: value}))
    assert refused.value.field == field
    assert problem in refused.value.problem
    assert refused.value.message.startswith(f"{field}: ")
