"""What the storage raises: a conflict (a uniqueness rule hit) or an outage. Anything else from a
driver is a bug. The one part of the storage the web layer may import: it answers 409 and 503."""

from __future__ import annotations


class StorageError(Exception):
    """Base of what backends raise; anything else from a driver is a bug or an outage."""


class ConflictError(StorageError):
    """A uniqueness rule was hit. Use cases either report it (4xx) or retry the transaction."""


class UnavailableError(StorageError):
    """The database cannot take writes now (locked, busy, read-only, full): try again later."""


class BusyError(UnavailableError):
    """Another connection holds the lock and this transaction was told not to wait for it."""


class CannotConnect(UnavailableError):
    """The database cannot be reached at all: not running, no such database, wrong user or
    password. The message is one line saying which, and what to do about it."""
