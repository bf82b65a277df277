"""What processing reads of the configuration (channels, the webhooks an event goes to, the
bots of an org), kept across transactions while the configuration is unchanged.

Every processing transaction read the same three things again (the channel of the account,
the subscribed webhooks, the org's bots): on PostgreSQL three round trips of a transaction's
six. The configuration changes seldom and never on the hot path, so a process keeps what it
read under the configuration's version, a counter that triggers bump in the transaction of
any change that matters (migration 0012, on both databases). A transaction reads the version
with its first statement (no round trip of its own: `SQLBase.use_cached_config`) and takes from
here only what was read under that same version. A change committed by another process bumps
the version, and the next transaction reads afresh: never staler than reading the tables.

Values are kept as read and must not be changed by their users (frozen dataclasses, tuples).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

# Far more than one process's channels, webhooks and orgs; past it, start over (a cache, not a
# copy of the tables).
MAX_ENTRIES = 10_000


class Missing:
    """Nothing cached for this key under this version."""


MISSING = Missing()


class ConfigCache:
    """Shared by the transactions of one storage (one process); safe across its threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._version = -1
        self._values: dict[Hashable, object] = {}

    def get(self, version: int, key: Hashable) -> object:
        with self._lock:
            if version != self._version:
                return MISSING
            return self._values.get(key, MISSING)

    def put(self, version: int, key: Hashable, value: object) -> None:
        """Keep `value`, read under `version`. A transaction that read an older version (it
        started before a change) leaves the newer entries alone."""
        with self._lock:
            if version > self._version or len(self._values) >= MAX_ENTRIES:
                self._version = max(version, self._version)
                self._values = {}
            if version == self._version:
                self._values[key] = value
