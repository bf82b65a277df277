"""Identifiers: time-ordered object ids and the DoubleTick-style customer id."""

from __future__ import annotations

import os
import threading
import time

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class _Entropy:
    """The OS's random bytes, fetched 4 KB at a time: a `getrandom` call per id cost ~50 µs
    on the machines we measured, several per opening. Locked, since the event loop and the
    database thread both make ids; emptied in a forked child, so parent and child never share."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def int(self, nbytes: int) -> int:
        with self._lock:
            if self._at + nbytes > len(self._buffer):
                self._buffer, self._at = os.urandom(self.SIZE), 0
            chunk = self._buffer[self._at : self._at + nbytes]
            self._at += nbytes
        return int.from_bytes(chunk, "big")


_entropy = _Entropy()  # one per process, as `secrets` keeps its own generator


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """`prefix_` + a ULID-like 26-char id: sorts by creation time, so ids double as cursors."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    return f"{prefix}_{encode_ulid((ms << 80) | _entropy.int(10))}"


# Ten bits at a time, from a table of the 1,024 character pairs: 13 lookups instead of 26
# shifts and appends (base64.b32encode is Python too, and slower). Ids are made several times
# per opening.
_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]
_SHIFTS = range(120, -1, -10)


def encode_ulid(value: int) -> str:
    """The 26 Crockford base32 characters of a 128-bit value, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


def new_customer_id() -> str:
    """`customer_` + 10 base62 chars, the shape of DoubleTick's `dtCustomerId`."""
    # One draw from the OS's generator, not ten: this runs for every new customer.
    value = 62**10
    while value >= 62**10:  # 60 random bits, drawn again in the 27% of cases out of range
        value = _entropy.int(8) >> 4
    chars = []
    for _ in range(10):
        value, digit = divmod(value, 62)
        chars.append(BASE62[digit])
    return "customer_" + "".join(chars)


def is_customer_id(value: str) -> bool:
    body = value.removeprefix("customer_")
    return value.startswith("customer_") and len(body) == 10 and all(c in BASE62 for c in body)
