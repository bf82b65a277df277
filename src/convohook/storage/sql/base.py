"""What every part of the shared SQL stands on: the cursor it reads, the statement hooks a
backend provides, the sealed columns and the contact row (read by several aggregates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from convohook.domain.model import Contact, Webhook
from convohook.storage.sealing import PLAIN, Sealer

# The secrets sealed at rest (storage/sealing.py), each named as the column it lives in (column
# names, not secrets: hence the noqa).
CHANNEL_TOKEN = "channels.access_token"  # noqa: S105
WEBHOOK_SECRET = "webhooks.secret"  # noqa: S105
WEBHOOK_AUTH = "webhooks.auth_value"
PREVIOUS_SECRET = "webhook_secrets.secret"  # noqa: S105

SECRET_COLUMNS = {  # column -> (table, primary key)
    CHANNEL_TOKEN: ("channels", "id"),
    WEBHOOK_SECRET: ("webhooks", "id"),
    WEBHOOK_AUTH: ("webhooks", "id"),
    PREVIOUS_SECRET: ("webhook_secrets", "id"),
}


CONTACT_COLS = (
    "c.id, c.org_id, c.channel_id, c.igsid, c.customer_id, c.username, c.name, "
    "c.profile_status, c.profile_fetched_at_ms, c.created_at_ms"
)


def contact_row(row: Sequence[object]) -> Contact:
    return Contact(*row)  # type: ignore[arg-type]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class SQLBase:
    """The statement hooks (`_x`, `_many`) a backend implements, and what its dialect adds to
    a query (row locks: PostgreSQL only; SQLite has one writer at a time anyway)."""

    FOR_UPDATE = ""
    # A lock that leaves the row's key alone: inserts referring to the row (a foreign key
    # check takes KEY SHARE) go on meanwhile.
    FOR_NO_KEY_UPDATE = ""
    SKIP_LOCKED = ""

    def __init__(self, sealer: Sealer = PLAIN) -> None:
        self._sealer = sealer
        # A transaction lives for one unit of work: what it read of the webhooks table stays
        # true until it commits (webhooks are not changed by the workers).
        self._subscribers: dict[tuple[str, str], list[Webhook]] = {}

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError
