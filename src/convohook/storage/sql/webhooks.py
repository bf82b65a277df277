"""Webhooks, the channels each follows, previous secrets during a rotation, endpoint health."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from convohook.domain.ids import new_id
from convohook.domain.model import (
    Webhook,
)
from convohook.storage.sealing import Sealer
from convohook.storage.sql.base import (
    PREVIOUS_SECRET,
    WEBHOOK_AUTH,
    WEBHOOK_SECRET,
    SQLBase,
)

# A success ends the webhook's failure streak; one parameter: the webhook's id.
WEBHOOK_HEALED = (
    "UPDATE webhooks SET failing_since_ms = NULL WHERE id = ? AND failing_since_ms IS NOT NULL"
)

_WEBHOOK_COLS = (
    "w.id, w.org_id, w.name, w.url, w.channel_type, w.events, w.enabled, w.disabled_reason, "
    "w.secret, w.created_at_ms, w.updated_at_ms, w.format, w.headers, w.auth_type, w.auth_value, "
    "w.timeout_s, w.failing_since_ms, w.rate_limit_per_s, w.max_concurrency, w.ordering, "
    "w.queue_while_disabled"
)


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


class WebhooksSQL(SQLBase):
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
        return self._one_webhook(org_id, webhook_id, "")

    def lock_webhook(self, org_id: str, webhook_id: str) -> Webhook | None:
        # SQLite's write transactions hold the database's one write lock from BEGIN IMMEDIATE.
        return self._one_webhook(org_id, webhook_id, self.FOR_UPDATE)

    def _one_webhook(self, org_id: str, webhook_id: str, lock: str) -> Webhook | None:
        row = self._x(
            f"SELECT {_WEBHOOK_COLS} FROM webhooks w WHERE w.org_id = ? AND w.id = ?" + lock,
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

    def subscriber_ids(self, channel_id: str, event_type: str) -> list[str]:
        """The webhooks an event of the channel gets a delivery for, by id, in id order: the
        enabled ones following the channel and the event, and the disabled ones that keep
        their queue. Ids only: one statement, no secret opened (processing needs no more)."""
        key = (channel_id, event_type)
        if key not in self._subscribers:

            def load() -> tuple[str, ...]:
                rows = self._x(
                    "SELECT w.id, w.events FROM webhooks w "
                    "JOIN webhook_channels wc ON wc.webhook_id = w.id WHERE wc.channel_id = ? "
                    "AND (w.enabled = TRUE OR w.queue_while_disabled = TRUE) ORDER BY w.id",
                    (channel_id,),
                ).fetchall()
                return tuple(str(r[0]) for r in rows if event_type in orjson.loads(str(r[1])))

            self._subscribers[key] = list(self._cached(("subscribers", *key), load))
        return self._subscribers[key]

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
        self._x(WEBHOOK_HEALED, (webhook_id,))

    def recover_deliveries(self, webhook_id: str, since_ms: int, now_ms: int) -> int:
        cur = self._x(
            "UPDATE deliveries SET status = 'pending', next_attempt_at_ms = ?, updated_at_ms = ? "
            "WHERE webhook_id = ? AND status = 'failed' AND created_at_ms >= ?",
            (now_ms, now_ms, webhook_id, since_ms),
        )
        return int(cur.rowcount)
