"""Channels: the Instagram accounts an org connected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convohook.domain.model import (
    Channel,
)
from convohook.storage.sql.base import (
    CHANNEL_TOKEN,
    SQLBase,
)


class ChannelsSQL(SQLBase):
    def _channel(self, r: Sequence[Any]) -> Channel:
        token = self._sealer.open(CHANNEL_TOKEN, str(r[5]))
        return Channel(
            str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), token, int(r[6]), r[7]
        )

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
        "SELECT id, org_id, type, handle, account_id, access_token, created_at_ms, "
        "auto_done_after FROM channels "
    )

    def lock_channel(self, org_id: str, channel_id: str) -> Channel | None:
        row = self._x(
            # Not FOR UPDATE, which an opening on this channel (its foreign key check) would
            # wait for, holding conversations the closer's reschedule_idle, holding this lock
            # too, may wait for: a deadlock.
            self._CHANNEL_SELECT + "WHERE org_id = ? AND id = ?" + self.FOR_NO_KEY_UPDATE,
            (org_id, channel_id),
        ).fetchone()
        return self._channel(row) if row else None

    def start_rescheduling(self, channel_id: str) -> None:
        self._x("UPDATE channels SET idle_rescheduled_to = '' WHERE id = ?", (channel_id,))

    def claim_rescheduling(self) -> tuple[str, str] | None:
        skip = self.FOR_NO_KEY_UPDATE + " SKIP LOCKED" if self.FOR_NO_KEY_UPDATE else ""
        row = self._x(
            "SELECT id, idle_rescheduled_to FROM channels "
            "WHERE idle_rescheduled_to IS NOT NULL LIMIT 1" + skip
        ).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def rescheduled(self, channel_id: str, to_contact_id: str | None) -> None:
        self._x(
            "UPDATE channels SET idle_rescheduled_to = ? WHERE id = ?", (to_contact_id, channel_id)
        )

    def update_channel(self, channel: Channel) -> None:
        self._x(
            "UPDATE channels SET handle = ?, access_token = ?, auto_done_after = ? WHERE id = ?",
            (
                channel.handle,
                self._sealer.seal(CHANNEL_TOKEN, channel.access_token),
                channel.auto_done_after,
                channel.id,
            ),
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
        def load() -> Channel | None:
            row = self._x(self._CHANNEL_SELECT + "WHERE account_id = ?", (account_id,)).fetchone()
            return self._channel(row) if row else None

        return self._cached(("channel", account_id), load)
