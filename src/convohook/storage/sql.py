"""The SQL both backends share, written once in the common subset of SQLite and PostgreSQL.

Placeholders are `?` (PostgreSQL's backend translates them); a nullable filter is written
`CAST(? AS TEXT) IS NULL` so PostgreSQL can type the parameter; booleans are TRUE/FALSE, which
SQLite reads as 1/0. What differs (row locking, claiming) is a hook the backends set or override.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson

from convohook.domain.ids import new_customer_id, new_id
from convohook.domain.model import (
    Attempt,
    AwaitingProfile,
    Backlog,
    Bot,
    Capture,
    Channel,
    Contact,
    Conversation,
    Delivery,
    DueDelivery,
    Message,
    Org,
    Session,
    StoredNotification,
    User,
    Webhook,
)
from convohook.storage.sealing import PLAIN, Sealer

# The secrets sealed at rest (storage/sealing.py), each named as the column it lives in (column
# names, not secrets: hence the noqa).
CHANNEL_TOKEN = "channels.access_token"  # noqa: S105
WEBHOOK_SECRET = "webhooks.secret"  # noqa: S105
WEBHOOK_AUTH = "webhooks.auth_value"
PREVIOUS_SECRET = "webhook_secrets.secret"  # noqa: S105

_SECRET_COLUMNS = {  # column -> (table, primary key)
    CHANNEL_TOKEN: ("channels", "id"),
    WEBHOOK_SECRET: ("webhooks", "id"),
    WEBHOOK_AUTH: ("webhooks", "id"),
    PREVIOUS_SECRET: ("webhook_secrets", "id"),
}

_CONTACT_COLS = (
    "c.id, c.org_id, c.channel_id, c.igsid, c.customer_id, c.username, c.name, "
    "c.profile_status, c.profile_fetched_at_ms, c.created_at_ms"
)
_WEBHOOK_COLS = (
    "w.id, w.org_id, w.name, w.url, w.channel_type, w.events, w.enabled, w.disabled_reason, "
    "w.secret, w.created_at_ms, w.updated_at_ms, w.format, w.headers, w.auth_type, w.auth_value, "
    "w.timeout_s, w.failing_since_ms, w.rate_limit_per_s, w.max_concurrency, w.ordering, "
    "w.queue_while_disabled"
)
# With strict ordering a delivery waits while an earlier one of the same conversation to the same
# webhook is still pending or being sent (delivery ids are time-ordered).
FIFO_READY = (
    " AND (w.ordering <> 'fifo' OR NOT EXISTS ("
    " SELECT 1 FROM deliveries p JOIN events pe ON pe.id = p.event_id"
    " WHERE p.webhook_id = d.webhook_id AND pe.conversation_id = e.conversation_id"
    " AND p.status IN ('pending', 'sending') AND p.id < d.id))"
)
_DELIVERY_COLS = (
    "d.id, d.org_id, d.event_id, e.type, d.webhook_id, d.status, d.attempt_count, "
    "d.next_attempt_at_ms, d.last_status_code, d.last_error, d.created_at_ms, d.updated_at_ms, "
    "e.payload"
)


def _contact(row: Sequence[object]) -> Contact:
    return Contact(*row)  # type: ignore[arg-type]


def _webhook(row: Sequence[object], channels: Sequence[str], sealer: Sealer) -> Webhook:
    return Webhook(
        id=str(row[0]),
        org_id=str(row[1]),
        name=str(row[2]),
        url=str(row[3]),
        channel_type=str(row[4]),
        events=tuple(orjson.loads(str(row[5]))),
        enabled=bool(row[6]),
        disabled_reason=row[7],  # type: ignore[arg-type]
        secret=sealer.open(WEBHOOK_SECRET, str(row[8])),
        created_at_ms=int(row[9]),  # type: ignore[call-overload]
        updated_at_ms=int(row[10]),  # type: ignore[call-overload]
        channel_ids=tuple(sorted(channels)),
        format=str(row[11]),
        headers=orjson.loads(str(row[12])),
        auth_type=row[13],  # type: ignore[arg-type]
        auth_value=sealer.open_optional(WEBHOOK_AUTH, row[14]),  # type: ignore[arg-type]
        timeout_s=row[15],  # type: ignore[arg-type]
        failing_since_ms=row[16],  # type: ignore[arg-type]
        rate_limit_per_s=row[17],  # type: ignore[arg-type]
        max_concurrency=row[18],  # type: ignore[arg-type]
        ordering=str(row[19]),
        queue_while_disabled=bool(row[20]),
    )


def _webhook_options(webhook: Webhook, sealer: Sealer) -> tuple[object, ...]:
    return (
        webhook.format,
        orjson.dumps(webhook.headers).decode(),
        webhook.auth_type,
        None if webhook.auth_value is None else sealer.seal(WEBHOOK_AUTH, webhook.auth_value),
        webhook.timeout_s,
        webhook.rate_limit_per_s,
        webhook.max_concurrency,
        webhook.ordering,
    )


def _due(r: Sequence[Any], previous_secrets: tuple[str, ...], sealer: Sealer) -> DueDelivery:
    return DueDelivery(
        id=str(r[0]),
        webhook_id=str(r[1]),
        url=str(r[2]),
        secret=sealer.open(WEBHOOK_SECRET, str(r[3])),
        payload=bytes(r[4]),
        attempt_count=int(r[5]),
        event_id=str(r[6]),
        event_type=str(r[7]),
        event_created_at_ms=int(r[8]),
        reason=r[9],
        conversation_id=r[10],
        igsid=r[11],
        first_message_text=r[12],
        first_message_at_ms=r[13],
        format=str(r[14]),
        headers=orjson.loads(r[15]),
        auth_type=r[16],
        auth_value=sealer.open_optional(WEBHOOK_AUTH, r[17]),
        timeout_s=r[18],
        previous_secrets=previous_secrets,
        rate_limit_per_s=r[19],
        max_concurrency=r[20],
        org_id=str(r[21]),
    )


def _delivery(row: Sequence[object], attempts: tuple[Attempt, ...] = ()) -> Delivery:
    return Delivery(*row, attempts=attempts)  # type: ignore[arg-type,misc]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class SQLTransaction:
    """Every method is one or two statements of plain SQL; no logic beyond mapping rows."""

    FOR_UPDATE = ""  # row locks: PostgreSQL only (SQLite has one writer at a time anyway)
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

    def _channels_of(self, webhook_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {i: [] for i in webhook_ids}
        if webhook_ids:
            marks = ",".join("?" * len(webhook_ids))
            for webhook_id, channel_id in self._x(
                "SELECT webhook_id, channel_id FROM webhook_channels "
                f"WHERE webhook_id IN ({marks}) ORDER BY channel_id",
                list(webhook_ids),
            ).fetchall():
                found[str(webhook_id)].append(str(channel_id))
        return found

    def _webhooks(self, rows: Sequence[Sequence[object]]) -> list[Webhook]:
        channels = self._channels_of([str(r[0]) for r in rows])
        return [_webhook(r, channels[str(r[0])], self._sealer) for r in rows]

    def _channel(self, r: Sequence[Any]) -> Channel:
        token = self._sealer.open(CHANNEL_TOKEN, str(r[5]))
        return Channel(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), token, int(r[6]))

    # organisations and API keys -------------------------------------------------------------

    def insert_org(self, org: Org) -> None:
        self._x(
            "INSERT INTO orgs (id, name, created_at_ms) VALUES (?, ?, ?)",
            (org.id, org.name, org.created_at_ms),
        )

    def insert_api_key(self, key_id: str, org_id: str, key_hash: str, now_ms: int) -> None:
        self._x(
            "INSERT INTO api_keys (id, org_id, key_hash, created_at_ms) VALUES (?, ?, ?, ?)",
            (key_id, org_id, key_hash, now_ms),
        )

    def org_for_key_hash(self, key_hash: str) -> Org | None:
        row = self._x(
            "SELECT o.id, o.name, o.created_at_ms FROM api_keys k JOIN orgs o ON o.id = k.org_id "
            "WHERE k.key_hash = ?",
            (key_hash,),
        ).fetchone()
        return Org(*row) if row else None

    # channels -------------------------------------------------------------------------------

    def insert_channel(self, channel: Channel) -> None:
        self._x(
            "INSERT INTO channels (id, org_id, type, handle, account_id, access_token, "
            "created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                channel.id,
                channel.org_id,
                channel.type,
                channel.handle,
                channel.account_id,
                self._sealer.seal(CHANNEL_TOKEN, channel.access_token),
                channel.created_at_ms,
            ),
        )

    _CHANNEL_SELECT = (
        "SELECT id, org_id, type, handle, account_id, access_token, created_at_ms FROM channels "
    )

    def list_channels(self, org_id: str, before: str | None, limit: int) -> list[Channel]:
        rows = self._x(
            self._CHANNEL_SELECT + "WHERE org_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) "
            "ORDER BY id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return [self._channel(r) for r in rows]

    def get_channel(self, org_id: str, channel_id: str) -> Channel | None:
        row = self._x(
            self._CHANNEL_SELECT + "WHERE org_id = ? AND id = ?", (org_id, channel_id)
        ).fetchone()
        return self._channel(row) if row else None

    def channel_by_account(self, account_id: str) -> Channel | None:
        row = self._x(self._CHANNEL_SELECT + "WHERE account_id = ?", (account_id,)).fetchone()
        return self._channel(row) if row else None

    # webhooks -------------------------------------------------------------------------------

    def insert_webhook(self, webhook: Webhook) -> None:
        self._x(
            "INSERT INTO webhooks (id, org_id, name, url, channel_type, events, secret, enabled, "
            "disabled_reason, created_at_ms, updated_at_ms, format, headers, auth_type, "
            "auth_value, timeout_s, rate_limit_per_s, max_concurrency, ordering) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                webhook.id,
                webhook.org_id,
                webhook.name,
                webhook.url,
                webhook.channel_type,
                orjson.dumps(list(webhook.events)).decode(),
                self._sealer.seal(WEBHOOK_SECRET, webhook.secret),
                webhook.enabled,
                webhook.disabled_reason,
                webhook.created_at_ms,
                webhook.updated_at_ms,
                *_webhook_options(webhook, self._sealer),
            ),
        )
        self._set_webhook_channels(webhook)

    def _set_webhook_channels(self, webhook: Webhook) -> None:
        self._x("DELETE FROM webhook_channels WHERE webhook_id = ?", (webhook.id,))
        self._many(
            "INSERT INTO webhook_channels (webhook_id, channel_id) VALUES (?, ?)",
            [(webhook.id, channel_id) for channel_id in webhook.channel_ids],
        )

    def update_webhook(self, webhook: Webhook) -> None:
        self._x(
            "UPDATE webhooks SET name = ?, url = ?, channel_type = ?, events = ?, secret = ?, "
            "enabled = ?, disabled_reason = ?, updated_at_ms = ?, format = ?, headers = ?, "
            "auth_type = ?, auth_value = ?, timeout_s = ?, rate_limit_per_s = ?, "
            "max_concurrency = ?, ordering = ?, failing_since_ms = ?, queue_while_disabled = ? "
            "WHERE id = ? AND org_id = ?",
            (
                webhook.name,
                webhook.url,
                webhook.channel_type,
                orjson.dumps(list(webhook.events)).decode(),
                self._sealer.seal(WEBHOOK_SECRET, webhook.secret),
                webhook.enabled,
                webhook.disabled_reason,
                webhook.updated_at_ms,
                *_webhook_options(webhook, self._sealer),
                webhook.failing_since_ms,
                webhook.queue_while_disabled,
                webhook.id,
                webhook.org_id,
            ),
        )
        self._set_webhook_channels(webhook)

    def delete_webhook(self, org_id: str, webhook_id: str) -> bool:
        cur = self._x("DELETE FROM webhooks WHERE org_id = ? AND id = ?", (org_id, webhook_id))
        return cur.rowcount > 0

    def get_webhook(self, org_id: str, webhook_id: str) -> Webhook | None:
        row = self._x(
            f"SELECT {_WEBHOOK_COLS} FROM webhooks w WHERE w.org_id = ? AND w.id = ?",
            (org_id, webhook_id),
        ).fetchone()
        return self._webhooks([row])[0] if row else None

    def list_webhooks(self, org_id: str, before: str | None, limit: int) -> list[Webhook]:
        rows = self._x(
            f"SELECT {_WEBHOOK_COLS} FROM webhooks w WHERE w.org_id = ? "
            "AND (CAST(? AS TEXT) IS NULL OR w.id < ?) ORDER BY w.id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return self._webhooks(rows)

    def webhooks_for(self, channel_id: str, event_type: str) -> list[Webhook]:
        key = (channel_id, event_type)
        if key not in self._subscribers:
            self._subscribers[key] = self._load_webhooks_for(channel_id, event_type)
        return self._subscribers[key]

    def _load_webhooks_for(self, channel_id: str, event_type: str) -> list[Webhook]:
        rows = self._x(
            f"SELECT {_WEBHOOK_COLS} FROM webhooks w "
            "JOIN webhook_channels wc ON wc.webhook_id = w.id "
            "WHERE wc.channel_id = ? AND (w.enabled = TRUE OR w.queue_while_disabled = TRUE) "
            "ORDER BY w.id",
            (channel_id,),
        ).fetchall()
        return [w for w in self._webhooks(rows) if event_type in w.events]

    def disable_webhook(
        self, webhook_id: str, reason: str, now_ms: int, *, keep_queue: bool = False
    ) -> bool:
        """Disable; True when it was enabled until now (so it is reported once). `keep_queue`:
        new events still get deliveries, which wait for the webhook to be enabled again."""
        cur = self._x(
            "UPDATE webhooks SET enabled = FALSE, disabled_reason = ?, updated_at_ms = ?, "
            "queue_while_disabled = ? WHERE id = ? AND enabled = TRUE",
            (reason, now_ms, keep_queue, webhook_id),
        )
        return int(cur.rowcount) > 0

    def ops_webhooks_for(self, org_id: str, event_type: str) -> list[Webhook]:
        rows = self._x(
            f"SELECT {_WEBHOOK_COLS} FROM webhooks w WHERE w.org_id = ? AND w.enabled = TRUE "
            "ORDER BY w.id",
            (org_id,),
        ).fetchall()
        return [w for w in self._webhooks(rows) if event_type in w.events]

    def get_or_create_contact(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> Contact:
        return self.contact_for(org_id, channel_id, igsid, now_ms)[0]

    def contact_for(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> tuple[Contact, bool]:
        select = f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.channel_id = ? AND c.igsid = ?"
        row = self._x(select, (channel_id, igsid)).fetchone()
        if row is None:
            row = self._x(
                "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, igsid) DO NOTHING RETURNING "
                + _CONTACT_COLS.replace("c.", ""),
                (new_id("ct", now_ms), org_id, channel_id, igsid, new_customer_id(), now_ms),
            ).fetchone()
            if row is not None:
                return _contact(row), True
            row = self._x(select, (channel_id, igsid)).fetchone()  # another worker's, since
        return _contact(row), False

    def set_contact_profile(
        self, contact_id: str, username: str, name: str | None, status: str, now_ms: int
    ) -> None:
        self._x(
            "UPDATE contacts SET username = ?, name = ?, profile_status = ?, "
            "profile_fetched_at_ms = ? WHERE id = ?",
            (username, name, status, now_ms, contact_id),
        )

    def get_contact(self, org_id: str, contact_id: str) -> Contact | None:
        row = self._x(
            f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.org_id = ? AND c.id = ?",
            (org_id, contact_id),
        ).fetchone()
        return _contact(row) if row else None

    def list_contacts(
        self,
        org_id: str,
        *,
        handle: str | None,
        channel_id: str | None,
        before: str | None,
        limit: int,
    ) -> list[Contact]:
        rows = self._x(
            f"SELECT {_CONTACT_COLS} FROM contacts c WHERE c.org_id = ? "
            "AND (CAST(? AS TEXT) IS NULL OR c.username = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR c.channel_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR c.id < ?) ORDER BY c.id DESC LIMIT ?",
            (org_id, handle, handle, channel_id, channel_id, before, before, limit),
        ).fetchall()
        return [_contact(r) for r in rows]

    # messages -------------------------------------------------------------------------------

    def insert_message(
        self,
        channel_id: str,
        mid: str,
        contact_id: str,
        kind: str,
        text: str | None,
        timestamp_ms: int,
        now_ms: int,
        conversation_id: str | None = None,
    ) -> bool:
        cur = self._x(
            "INSERT INTO messages (channel_id, mid, contact_id, kind, text, timestamp_ms, "
            "received_at_ms, conversation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (channel_id, mid, contact_id, kind, text, timestamp_ms, now_ms, conversation_id),
        )
        return cur.rowcount > 0

    def list_messages(
        self, org_id: str, conversation_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[Message]:
        after_ms, after_mid = after if after is not None else (None, None)
        rows = self._x(
            "SELECT m.channel_id, m.mid, m.contact_id, m.conversation_id, m.kind, m.text,"
            " m.timestamp_ms, m.received_at_ms FROM messages m"
            " JOIN conversations v ON v.id = m.conversation_id"
            " WHERE m.conversation_id = ? AND v.org_id = ?"
            " AND (CAST(? AS BIGINT) IS NULL OR m.timestamp_ms > ?"
            " OR (m.timestamp_ms = ? AND m.mid > ?))"
            " ORDER BY m.timestamp_ms, m.mid LIMIT ?",
            (conversation_id, org_id, after_ms, after_ms, after_ms, after_mid, limit),
        ).fetchall()
        return [Message(*r) for r in rows]

    # conversations --------------------------------------------------------------------------

    def open_conversation_of(self, channel_id: str, contact_id: str) -> str | None:
        row = self._x(
            "SELECT id FROM conversations WHERE channel_id = ? AND contact_id = ? "
            "AND status = 'open'" + self.FOR_UPDATE,
            (channel_id, contact_id),
        ).fetchone()
        return str(row[0]) if row else None

    def last_done_at(self, channel_id: str, contact_id: str) -> int | None:
        row = self._x(
            "SELECT max(done_at_ms) FROM conversations WHERE channel_id = ? AND contact_id = ?",
            (channel_id, contact_id),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def insert_conversation(
        self,
        conversation_id: str,
        org_id: str,
        channel_id: str,
        contact_id: str,
        reason: str,
        opened_at_ms: int,
    ) -> None:
        self._x(
            "INSERT INTO conversations (id, org_id, channel_id, contact_id, status, reason, "
            "opened_at_ms) VALUES (?, ?, ?, ?, 'open', ?, ?)",
            (conversation_id, org_id, channel_id, contact_id, reason, opened_at_ms),
        )

    def lock_conversation(self, conversation_id: str) -> None:
        self._x("SELECT id FROM conversations WHERE id = ?" + self.FOR_UPDATE, (conversation_id,))

    def mark_done(self, conversation_id: str, done_at_ms: int) -> bool:
        cur = self._x(
            "UPDATE conversations SET status = 'done', done_at_ms = ? "
            "WHERE id = ? AND status = 'open'",
            (done_at_ms, conversation_id),
        )
        return cur.rowcount > 0

    _CONVERSATION_SELECT = (
        "SELECT v.id, v.org_id, v.channel_id, v.status, v.reason, v.opened_at_ms, v.done_at_ms, "
        f"{_CONTACT_COLS} FROM conversations v JOIN contacts c ON c.id = v.contact_id "
    )

    @staticmethod
    def _conversation(row: Sequence[object]) -> Conversation:
        return Conversation(
            id=str(row[0]),
            org_id=str(row[1]),
            channel_id=str(row[2]),
            status=str(row[3]),
            reason=str(row[4]),
            opened_at_ms=int(row[5]),  # type: ignore[call-overload]
            done_at_ms=row[6],  # type: ignore[arg-type]
            contact=_contact(row[7:]),
        )

    def get_conversation(self, org_id: str, conversation_id: str) -> Conversation | None:
        row = self._x(
            self._CONVERSATION_SELECT + "WHERE v.org_id = ? AND v.id = ?",
            (org_id, conversation_id),
        ).fetchone()
        return self._conversation(row) if row else None

    def list_conversations(
        self,
        org_id: str,
        *,
        status: str | None,
        channel_id: str | None,
        contact_id: str | None,
        before: str | None,
        limit: int,
    ) -> list[Conversation]:
        rows = self._x(
            self._CONVERSATION_SELECT
            + "WHERE v.org_id = ? AND (CAST(? AS TEXT) IS NULL OR v.status = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.channel_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.contact_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.id < ?) ORDER BY v.id DESC LIMIT ?",
            (
                org_id,
                status,
                status,
                channel_id,
                channel_id,
                contact_id,
                contact_id,
                before,
                before,
                limit,
            ),
        ).fetchall()
        return [self._conversation(r) for r in rows]

    # events and the outbox ------------------------------------------------------------------

    def insert_event(
        self,
        *,
        event_id: str,
        org_id: str,
        channel_id: str,
        event_type: str,
        conversation_id: str,
        contact_id: str,
        reason: str | None,
        payload: bytes | None,
        profile_deadline_ms: int,
        first_message_text: str | None,
        first_message_at_ms: int | None,
        now_ms: int,
        profile_claimed_until_ms: int = 0,
    ) -> None:
        self._x(
            "INSERT INTO events (id, org_id, channel_id, type, conversation_id, contact_id, "
            "reason, payload, profile_deadline_ms, first_message_text, first_message_at_ms, "
            "created_at_ms, profile_next_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                org_id,
                channel_id,
                event_type,
                conversation_id,
                contact_id,
                reason,
                payload,
                profile_deadline_ms,
                first_message_text,
                first_message_at_ms,
                now_ms,
                profile_claimed_until_ms,
            ),
        )

    def insert_deliveries(
        self, rows: Iterable[tuple[str, str]], event_id: str, org_id: str, now_ms: int
    ) -> None:
        self._many(
            "INSERT INTO deliveries (id, org_id, event_id, webhook_id, status, "
            "next_attempt_at_ms, created_at_ms, updated_at_ms) "
            "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            [
                (delivery_id, org_id, event_id, webhook_id, now_ms, now_ms, now_ms)
                for delivery_id, webhook_id in rows
            ],
        )

    def claim_awaiting_profiles(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[AwaitingProfile]:
        """Contacts whose events wait for a profile, claimed until `lease_until_ms` so that other
        workers look up other customers meanwhile (and take these over if this one dies)."""
        claimed = self._x(
            "UPDATE events SET profile_next_at_ms = ? WHERE id IN ("
            " SELECT id FROM events WHERE payload IS NULL AND profile_next_at_ms <= ?"
            " ORDER BY profile_next_at_ms LIMIT ?" + self.SKIP_LOCKED + ") RETURNING contact_id",
            (lease_until_ms, now_ms, limit),
        ).fetchall()
        contact_ids = sorted({str(r[0]) for r in claimed})
        if not contact_ids:
            return []
        marks = ",".join("?" * len(contact_ids))
        rows = self._x(
            f"SELECT {_CONTACT_COLS}, ch.handle, ch.access_token, max(e.profile_attempts), "
            "min(e.profile_deadline_ms), count(*) "
            "FROM events e JOIN contacts c ON c.id = e.contact_id "
            "JOIN channels ch ON ch.id = e.channel_id "
            f"WHERE e.payload IS NULL AND e.contact_id IN ({marks}) "
            "GROUP BY c.id, ch.handle, ch.access_token",
            contact_ids,
        ).fetchall()
        return [
            AwaitingProfile(
                contact=_contact(r[:10]),
                channel_handle=str(r[10]),
                access_token=self._sealer.open(CHANNEL_TOKEN, str(r[11])),
                attempts=int(r[12]),
                deadline_ms=int(r[13]),
                events=int(r[14]),
            )
            for r in rows
        ]

    def events_awaiting_profile(self, contact_id: str) -> list[tuple[str, str]]:
        rows = self._x(
            "SELECT id, type FROM events WHERE contact_id = ? AND payload IS NULL ORDER BY id",
            (contact_id,),
        ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def set_event_payload(self, event_id: str, payload: bytes) -> None:
        self._x(
            "UPDATE events SET payload = ? WHERE id = ? AND payload IS NULL", (payload, event_id)
        )

    def postpone_profile(self, contact_id: str, attempts: int, next_at_ms: int) -> None:
        self._x(
            "UPDATE events SET profile_attempts = ?, profile_next_at_ms = ? "
            "WHERE contact_id = ? AND payload IS NULL",
            (attempts, next_at_ms, contact_id),
        )

    # deliveries -----------------------------------------------------------------------------

    def _claim_ids(self, now_ms: int, lease_until_ms: int, limit: int) -> list[str]:
        # Due = pending and scheduled, or sending under a lease that expired (its worker died).
        rows = self._x(
            "UPDATE deliveries SET status = 'sending', lease_until_ms = ? WHERE id IN ("
            " SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id"
            " JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'pending' AND d.next_attempt_at_ms <= ?"
            " AND e.payload IS NOT NULL AND w.enabled = TRUE" + FIFO_READY + " UNION ALL"
            " SELECT d.id FROM deliveries d WHERE d.status = 'sending' AND d.lease_until_ms <= ?"
            " LIMIT ?) RETURNING id",
            (lease_until_ms, now_ms, now_ms, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def claim_due_deliveries(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[DueDelivery]:
        ids = self._claim_ids(now_ms, lease_until_ms, limit)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        details = self._x(
            "SELECT d.id, d.webhook_id, w.url, w.secret, e.payload, d.attempt_count, e.id, e.type, "
            "e.created_at_ms, e.reason, e.conversation_id, c.igsid, e.first_message_text, "
            "e.first_message_at_ms, w.format, w.headers, w.auth_type, w.auth_value, w.timeout_s, "
            "w.rate_limit_per_s, w.max_concurrency, d.org_id "
            "FROM deliveries d JOIN events e ON e.id = d.event_id "
            "JOIN webhooks w ON w.id = d.webhook_id LEFT JOIN contacts c ON c.id = e.contact_id "
            f"WHERE d.id IN ({marks}) ORDER BY d.id",
            ids,
        ).fetchall()
        previous = self._previous_secrets(sorted({str(r[1]) for r in details}), now_ms)
        return [_due(r, tuple(previous.get(str(r[1]), ())), self._sealer) for r in details]

    def _previous_secrets(self, webhook_ids: Sequence[str], now_ms: int) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if webhook_ids:
            marks = ",".join("?" * len(webhook_ids))
            for webhook_id, secret in self._x(
                "SELECT webhook_id, secret FROM webhook_secrets "
                f"WHERE webhook_id IN ({marks}) AND expires_at_ms > ? ORDER BY created_at_ms DESC",
                [*webhook_ids, now_ms],
            ).fetchall():
                found.setdefault(str(webhook_id), []).append(
                    self._sealer.open(PREVIOUS_SECRET, str(secret))
                )
        return found

    def keep_previous_secret(
        self, webhook_id: str, secret: str, expires_at_ms: int, now_ms: int
    ) -> None:
        self._x(
            "INSERT INTO webhook_secrets (id, webhook_id, secret, expires_at_ms, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                new_id("whs", now_ms),
                webhook_id,
                self._sealer.seal(PREVIOUS_SECRET, secret),
                expires_at_ms,
                now_ms,
            ),
        )
        self._x("DELETE FROM webhook_secrets WHERE expires_at_ms <= ?", (now_ms,))

    def webhook_failing(self, webhook_id: str, now_ms: int) -> int:
        """Note a failure; returns when the current unbroken run of failures began."""
        row = self._x(
            "UPDATE webhooks SET failing_since_ms = COALESCE(failing_since_ms, ?) WHERE id = ? "
            "RETURNING failing_since_ms",
            (now_ms, webhook_id),
        ).fetchone()
        return int(row[0]) if row else now_ms

    def webhook_healthy(self, webhook_id: str) -> None:
        self._x(
            "UPDATE webhooks SET failing_since_ms = NULL "
            "WHERE id = ? AND failing_since_ms IS NOT NULL",
            (webhook_id,),
        )

    def recover_deliveries(self, webhook_id: str, since_ms: int, now_ms: int) -> int:
        cur = self._x(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, updated_at_ms = ? "
            "WHERE webhook_id = ? AND status = 'failed' AND created_at_ms >= ?",
            (now_ms, now_ms, webhook_id, since_ms),
        )
        return int(cur.rowcount)

    def backlog(self, now_ms: int) -> Backlog:
        """What waits: for `/metrics`, by the partial indexes that make each count cheap."""
        [pending] = self._x(
            "SELECT count(*) FROM notifications WHERE status = 'pending'"
        ).fetchone()
        due, oldest = self._x(
            "SELECT count(*), min(next_attempt_at_ms) FROM deliveries "
            "WHERE status = 'pending' AND next_attempt_at_ms <= ?",
            (now_ms,),
        ).fetchone()
        [profiles] = self._x("SELECT count(*) FROM events WHERE payload IS NULL").fetchone()
        return Backlog(
            notifications=int(pending),
            due_deliveries=int(due),
            oldest_due_ms=None if oldest is None else int(oldest),
            awaiting_profile=int(profiles),
        )

    def next_due_at(self) -> int | None:
        row = self._x(
            "SELECT min(t) FROM ("
            " SELECT min(d.next_attempt_at_ms) AS t FROM deliveries d"
            " JOIN events e ON e.id = d.event_id JOIN webhooks w ON w.id = d.webhook_id"
            " WHERE d.status = 'pending' AND e.payload IS NOT NULL AND w.enabled = TRUE"
            + FIFO_READY
            + " UNION ALL"
            " SELECT min(lease_until_ms) FROM deliveries WHERE status = 'sending') AS due"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def record_attempt(self, delivery_id: str, attempt: Attempt) -> None:
        self._x(
            "INSERT INTO attempts (delivery_id, attempt_number, attempted_at_ms, url, "
            "status_code, response_body, duration_ms, error, error_class, request_headers, "
            "request_body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                delivery_id,
                attempt.attempt_number,
                attempt.attempted_at_ms,
                attempt.url,
                attempt.status_code,
                attempt.response_body,
                attempt.duration_ms,
                attempt.error,
                attempt.error_class,
                orjson.dumps(attempt.request_headers).decode()
                if attempt.request_headers is not None
                else None,
                attempt.request_body,
            ),
        )

    def update_delivery(
        self,
        delivery_id: str,
        *,
        status: str,
        attempt_count: int,
        next_attempt_at_ms: int | None,
        last_status_code: int | None,
        last_error: str | None,
        now_ms: int,
    ) -> None:
        self._x(
            "UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at_ms = ?, "
            "lease_until_ms = NULL, last_status_code = ?, last_error = ?, updated_at_ms = ? "
            "WHERE id = ?",
            (
                status,
                attempt_count,
                next_attempt_at_ms,
                last_status_code,
                last_error,
                now_ms,
                delivery_id,
            ),
        )

    def _attempts(self, delivery_ids: list[str]) -> dict[str, list[Attempt]]:
        found: dict[str, list[Attempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return found
        marks = ",".join("?" * len(delivery_ids))
        rows = self._x(
            "SELECT delivery_id, attempt_number, attempted_at_ms, url, status_code, "
            "response_body, duration_ms, error, error_class, request_headers, request_body "
            f"FROM attempts WHERE delivery_id IN ({marks}) ORDER BY id",
            delivery_ids,
        ).fetchall()
        for r in rows:
            found[str(r[0])].append(
                Attempt(
                    attempt_number=r[1],
                    attempted_at_ms=r[2],
                    url=r[3],
                    status_code=r[4],
                    response_body=r[5],
                    duration_ms=r[6],
                    error=r[7],
                    error_class=r[8],
                    request_headers=orjson.loads(r[9]) if r[9] is not None else None,
                    request_body=r[10],
                )
            )
        return found

    def get_delivery(self, org_id: str, delivery_id: str) -> Delivery | None:
        row = self._x(
            f"SELECT {_DELIVERY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.org_id = ? AND d.id = ?",
            (org_id, delivery_id),
        ).fetchone()
        if not row:
            return None
        return _delivery(row, tuple(self._attempts([delivery_id])[delivery_id]))

    def list_deliveries(
        self, org_id: str, webhook_id: str, before: str | None, limit: int
    ) -> list[Delivery]:
        rows = self._x(
            f"SELECT {_DELIVERY_COLS} FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.org_id = ? AND d.webhook_id = ? AND (CAST(? AS TEXT) IS NULL OR d.id < ?) "
            "ORDER BY d.id DESC LIMIT ?",
            (org_id, webhook_id, before, before, limit),
        ).fetchall()
        attempts = self._attempts([str(r[0]) for r in rows])
        return [_delivery(r, tuple(attempts[str(r[0])])) for r in rows]

    def defer_deliveries(self, rows: Sequence[tuple[str, int]], now_ms: int) -> None:
        """Put claimed deliveries back, due later, without counting an attempt (rate limits)."""
        self._many(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, "
            "lease_until_ms = NULL, updated_at_ms = ? WHERE id = ? AND status = 'sending'",
            [(next_at, now_ms, delivery_id) for delivery_id, next_at in rows],
        )

    def reschedule_delivery(self, delivery_id: str, now_ms: int) -> None:
        self._x(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, "
            "lease_until_ms = NULL, updated_at_ms = ? WHERE id = ?",
            (now_ms, now_ms, delivery_id),
        )

    # inbound notifications ------------------------------------------------------------------

    def insert_notification(self, body: bytes, now_ms: int) -> int:
        row = self._x(
            "INSERT INTO notifications (body, received_at_ms) VALUES (?, ?) RETURNING id",
            (body, now_ms),
        ).fetchone()
        return int(row[0])

    def insert_notifications(self, bodies: Sequence[bytes], now_ms: int) -> None:
        self._many(
            "INSERT INTO notifications (body, received_at_ms) VALUES (?, ?)",
            [(body, now_ms) for body in bodies],
        )

    def pending_notifications(self, limit: int) -> list[StoredNotification]:
        rows = self._x(
            "SELECT id, body, received_at_ms FROM notifications WHERE status = 'pending' "
            "ORDER BY id LIMIT ?" + self.SKIP_LOCKED,
            (limit,),
        ).fetchall()
        return [StoredNotification(int(r[0]), bytes(r[1]), int(r[2])) for r in rows]

    def mark_notifications_processed(
        self, ids: Sequence[int], now_ms: int, error: str | None = None
    ) -> None:
        # A notification we could not process is kept as 'failed' with its error, never dropped.
        self._many(
            "UPDATE notifications SET status = ?, processed_at_ms = ?, error = ? WHERE id = ?",
            [("failed" if error else "processed", now_ms, error, i) for i in ids],
        )

    # schema ---------------------------------------------------------------------------------

    def applied_migrations(self) -> set[int]:
        return {int(r[0]) for r in self._x("SELECT version FROM schema_migrations").fetchall()}

    # secrets at rest ------------------------------------------------------------------------

    def secrets_at_rest(self) -> list[tuple[str, str, str]]:
        """Every stored secret as (column, row id, value as stored, sealed or not)."""
        found: list[tuple[str, str, str]] = []
        for column, (table, key) in _SECRET_COLUMNS.items():
            name = column.split(".")[1]
            rows = self._x(
                f"SELECT {key}, {name} FROM {table} WHERE {name} IS NOT NULL ORDER BY {key}"
            ).fetchall()
            found.extend((column, str(row_id), str(value)) for row_id, value in rows)
        return found

    def reseal_secret(self, column: str, row_id: str, stored: str, value: str) -> bool:
        """Replace a secret's stored form, if it is still `stored` (a concurrent change wins)."""
        table, key = _SECRET_COLUMNS[column]
        name = column.split(".")[1]
        cur = self._x(
            f"UPDATE {table} SET {name} = ? WHERE {key} = ? AND {name} = ?",
            (self._sealer.seal(column, value), row_id, stored),
        )
        return cur.rowcount > 0

    # retention ------------------------------------------------------------------------------

    def delete_finished_deliveries(self, before_ms: int, limit: int) -> int:
        ids = [
            str(r[0])
            for r in self._x(
                "SELECT id FROM deliveries WHERE status IN ('succeeded', 'failed') "
                "AND updated_at_ms < ? ORDER BY updated_at_ms LIMIT ?",
                (before_ms, limit),
            ).fetchall()
        ]
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        self._x(f"DELETE FROM attempts WHERE delivery_id IN ({marks})", ids)
        return int(self._x(f"DELETE FROM deliveries WHERE id IN ({marks})", ids).rowcount)

    def delete_orphan_events(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM events WHERE id IN (SELECT e.id FROM events e "
                "WHERE e.created_at_ms < ? AND e.payload IS NOT NULL "
                "AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    def delete_processed_notifications(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM notifications WHERE id IN (SELECT id FROM notifications "
                "WHERE status <> 'pending' AND received_at_ms < ? ORDER BY id LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    def delete_captures(self, before_ms: int, limit: int) -> int:
        return int(
            self._x(
                "DELETE FROM captures WHERE id IN (SELECT id FROM captures "
                "WHERE received_at_ms < ? ORDER BY id LIMIT ?)",
                (before_ms, limit),
            ).rowcount
        )

    # users and sessions ---------------------------------------------------------------------

    _USER_COLS = "u.id, u.org_id, u.email, u.password_hash, u.created_at_ms"

    def insert_user(self, user: User) -> None:
        self._x(
            "INSERT INTO users (id, org_id, email, password_hash, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (user.id, user.org_id, user.email, user.password_hash, user.created_at_ms),
        )

    def user_by_email(self, email: str) -> User | None:
        row = self._x(
            f"SELECT {self._USER_COLS} FROM users u WHERE u.email = ?", (email,)
        ).fetchone()
        return User(*row) if row else None

    def insert_session(
        self, token_hash: str, user_id: str, csrf_token: str, now_ms: int, expires_at_ms: int
    ) -> None:
        self._x("DELETE FROM sessions WHERE expires_at_ms <= ?", (now_ms,))
        self._x(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at_ms, "
            "expires_at_ms) VALUES (?, ?, ?, ?, ?)",
            (token_hash, user_id, csrf_token, now_ms, expires_at_ms),
        )

    def session_by_hash(self, token_hash: str, now_ms: int) -> Session | None:
        row = self._x(
            f"SELECT {self._USER_COLS}, s.csrf_token, s.expires_at_ms FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at_ms > ?",
            (token_hash, now_ms),
        ).fetchone()
        return Session(User(*row[:5]), str(row[5]), int(row[6])) if row else None

    def delete_session(self, token_hash: str) -> None:
        self._x("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))

    def delivery_counts(self, org_id: str) -> dict[str, tuple[int, int]]:
        """Per webhook: (delivered, failing) where failing = failed, or pending after a try."""
        rows = self._x(
            "SELECT webhook_id,"
            " sum(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN status = 'failed' OR (status = 'pending' AND attempt_count > 0)"
            " THEN 1 ELSE 0 END)"
            " FROM deliveries WHERE org_id = ? GROUP BY webhook_id",
            (org_id,),
        ).fetchall()
        return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}

    # capture bots ---------------------------------------------------------------------------

    def insert_bot(self, bot: Bot) -> None:
        self._x(
            "INSERT INTO bots (id, org_id, name, trigger, token, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (bot.id, bot.org_id, bot.name, bot.trigger, bot.token, bot.created_at_ms),
        )

    def get_bot(self, org_id: str, bot_id: str) -> Bot | None:
        row = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots "
            "WHERE org_id = ? AND id = ?",
            (org_id, bot_id),
        ).fetchone()
        return Bot(*row) if row else None

    def list_bots(self, org_id: str, before: str | None, limit: int) -> list[Bot]:
        rows = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots "
            "WHERE org_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (org_id, before, before, limit),
        ).fetchall()
        return [Bot(*r) for r in rows]

    def bot_by_token(self, token: str) -> Bot | None:
        row = self._x(
            "SELECT id, org_id, name, trigger, token, created_at_ms FROM bots WHERE token = ?",
            (token,),
        ).fetchone()
        return Bot(*row) if row else None

    def insert_capture(self, capture: Capture) -> None:
        self._x(
            "INSERT INTO captures (id, bot_id, received_at_ms, method, headers, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                capture.id,
                capture.bot_id,
                capture.received_at_ms,
                capture.method,
                orjson.dumps(capture.headers).decode(),
                capture.body,
            ),
        )

    def list_captures(self, bot_id: str, before: str | None, limit: int) -> list[Capture]:
        rows = self._x(
            "SELECT id, bot_id, received_at_ms, method, headers, body FROM captures "
            "WHERE bot_id = ? AND (CAST(? AS TEXT) IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (bot_id, before, before, limit),
        ).fetchall()
        return [
            Capture(str(r[0]), str(r[1]), int(r[2]), str(r[3]), orjson.loads(r[4]), str(r[5]))
            for r in rows
        ]
