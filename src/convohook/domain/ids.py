"""Identifiers: time-ordered object ids and the DoubleTick-style customer id."""

from __future__ import annotations

import secrets
import time

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """`prefix_` + a ULID-like 26-char id: sorts by creation time, so ids double as cursors."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def new_customer_id() -> str:
    """`customer_` + 10 base62 chars, the shape of DoubleTick's `dtCustomerId`."""
    # One draw from the OS's generator, not ten: this runs for every new customer.
    value = secrets.randbelow(62**10)
    chars = []
    for _ in range(10):
        value, digit = divmod(value, 62)
        chars.append(BASE62[digit])
    return "customer_" + "".join(chars)


def is_customer_id(value: str) -> bool:
    body = value.removeprefix("customer_")
    return value.startswith("customer_") and len(body) == 10 and all(c in BASE62 for c in body)
