"""What every part of the shared SQL stands on: the cursor it reads, the statement hooks a
backend provides, the sealed columns and the contact row (read by several aggregates)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar

from convohook.domain.model import Bot, Contact, User
from convohook.storage.config_cache import MISSING, ConfigCache
from convohook.storage.sealing import PLAIN, Sealer

T = TypeVar("T")

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
    "c.profile_status, c.profile_fetched_at_ms, c.created_at_ms, c.follower_count, "
    "c.is_user_follow_business, c.is_verified_user"
)
CONTACT_WIDTH = 13  # columns in CONTACT_COLS: what follows them in a row starts there


def _flag(value: object) -> bool | None:
    # SQLite hands booleans back as 0/1.
    return None if value is None else bool(value)


# IN lists are cut to this many values: far below SQLite's limit on parameters (32,766).
IN_LIST_CHUNK = 500


def chunks(values: Sequence[str]) -> list[Sequence[str]]:
    """`values` in parts short enough for one IN list each."""
    return [values[i : i + IN_LIST_CHUNK] for i in range(0, len(values), IN_LIST_CHUNK)]


def placeholders(values: Sequence[object]) -> str:
    """The placeholders of an IN list of `values`."""
    return ", ".join("?" * len(values))


def contact_row(row: Sequence[Any]) -> Contact:
    return Contact(
        id=row[0],
        org_id=row[1],
        channel_id=row[2],
        igsid=row[3],
        customer_id=row[4],
        username=row[5],
        name=row[6],
        profile_status=row[7],
        profile_fetched_at_ms=row[8],
        created_at_ms=row[9],
        follower_count=row[10],
        is_user_follow_business=_flag(row[11]),
        is_verified_user=_flag(row[12]),
    )


USER_COLS = "u.id, u.org_id, u.email, u.password_hash, u.created_at_ms, u.name, u.available"
USER_WIDTH = 7


def user_row(row: Sequence[Any]) -> User:
    return User(
        id=row[0],
        org_id=row[1],
        email=row[2],
        password_hash=row[3],
        created_at_ms=row[4],
        name=row[5],
        available=bool(row[6]),
    )


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
    # An event's body not built yet, where the event is found by its id.
    PAYLOAD_UNSET = "payload IS NULL"

    def __init__(self, sealer: Sealer = PLAIN, config: ConfigCache | None = None) -> None:
        self._sealer = sealer
        self._config = config
        self._config_version: Cursor | None = None  # sent by use_cached_config
        self._version: int | None = None  # ...and read when first needed
        # A transaction lives for one unit of work: what it read of the webhooks table stays
        # true until it commits (webhooks are not changed by the workers).
        self._subscribers: dict[tuple[str, str], list[str]] = {}
        self._bots_for: dict[str, list[Bot]] = {}  # by org; bots are not changed by workers

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def use_cached_config(self) -> None:
        """From now on, read channels, subscribers and bots from what this process read of
        them before, as long as the configuration's version is still the one this
        transaction sees (storage/config_cache.py). The version goes with the next statement:
        call this first."""
        if self._config is not None and self._config_version is None:
            self._config_version = self._x("SELECT n FROM config_version")

    def _cached(self, key: Hashable, load: Callable[[], T]) -> T:
        """`load()`, or what it returned under the same configuration version before."""
        if self._config is None or self._config_version is None:
            return load()
        if self._version is None:
            row = self._config_version.fetchone()
            self._version = int(row[0])
        value = self._config.get(self._version, key)
        if value is MISSING:
            value = load()
            self._config.put(self._version, key, value)
        return value  # type: ignore[return-value]  # what `load` returned for this key

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _insert(self, sql: str, params: Sequence[Any]) -> None:
        """An INSERT whose result is not read: a backend may send it later, with others
        (storage/held_inserts.py), but before any other statement of the transaction."""
        self._x(sql, params)

    def _insert_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._many(sql, rows)
