"""A result that a transaction reads with its commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")

_UNREAD = object()


class AtCommit(Generic[T]):
    """What a transaction's last statements return, read once it has committed.

    On PostgreSQL those statements go with the COMMIT, one round trip for both, where reading
    them in the transaction cost one of its own: a dispatcher's claim is the last thing its
    transaction does, and the deliveries are sent only once the claim is committed anyway. On
    SQLite the value is there at once. Read it (`get`) after the transaction returned: a
    transaction that failed has nothing to read."""

    __slots__ = ("_read", "_value")

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._value: object = _UNREAD

    @classmethod
    def now(cls, value: T) -> AtCommit[T]:
        at_commit: AtCommit[T] = cls(lambda: value)
        at_commit._value = value
        return at_commit

    def get(self) -> T:
        if self._value is _UNREAD:
            self._value = self._read()
        return self._value  # type: ignore[return-value]  # what `_read` returned

    def map(self, fn: Callable[[T], U]) -> AtCommit[U]:
        """`fn` of the value, applied when it is read."""
        return AtCommit(lambda: fn(self.get()))
