"""Outbound messages: replies the sender claims under a lease, echoes matched by mid, and a
conversation's messages in both directions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convohook.domain.model import DueReply, Message, OutboundMessage
from convohook.storage.sql.base import CHANNEL_TOKEN, SQLBase

# Kinds of `messages` rows that are the customer writing (the reply window's clock).
CUSTOMER_KINDS = "('message', 'postback')"

_OUT_COLS = (
    "o.id, o.org_id, o.channel_id, o.contact_id, o.conversation_id, o.recipient_igsid, o.text, "
    "o.human_agent, o.status, o.attempts, o.next_attempt_at_ms, o.error, o.mid, o.sent_by, "
    "o.created_at_ms, o.sent_at_ms, o.updated_at_ms"
)


def _outbound(r: Sequence[Any]) -> OutboundMessage:
    return OutboundMessage(
        id=str(r[0]),
        org_id=str(r[1]),
        channel_id=str(r[2]),
        contact_id=str(r[3]),
        conversation_id=r[4],
        recipient_igsid=str(r[5]),
        text=str(r[6]),
        human_agent=bool(r[7]),
        status=str(r[8]),
        attempts=int(r[9]),
        next_attempt_at_ms=r[10],
        error=r[11],
        mid=r[12],
        sent_by=str(r[13]),
        created_at_ms=int(r[14]),
        sent_at_ms=r[15],
        updated_at_ms=int(r[16]),
    )


class RepliesSQL(SQLBase):
    def insert_outbound(self, message: OutboundMessage) -> bool:
        """False when its mid is stored already (an echo seen twice, or raced by the sender)."""
        m = message
        cur = self._x(
            "INSERT INTO outbound_messages (id, org_id, channel_id, contact_id, conversation_id, "
            "recipient_igsid, text, human_agent, status, attempts, next_attempt_at_ms, error, "
            "mid, sent_by, created_at_ms, sent_at_ms, updated_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                m.id,
                m.org_id,
                m.channel_id,
                m.contact_id,
                m.conversation_id,
                m.recipient_igsid,
                m.text,
                int(m.human_agent),
                m.status,
                m.attempts,
                m.next_attempt_at_ms,
                m.error,
                m.mid,
                m.sent_by,
                m.created_at_ms,
                m.sent_at_ms,
                m.updated_at_ms,
            ),
        )
        return cur.rowcount > 0

    def get_outbound(self, org_id: str, message_id: str) -> OutboundMessage | None:
        row = self._x(
            f"SELECT {_OUT_COLS} FROM outbound_messages o WHERE o.org_id = ? AND o.id = ?",
            (org_id, message_id),
        ).fetchone()
        return _outbound(row) if row else None

    def outbound_by_mid(self, channel_id: str, mid: str) -> OutboundMessage | None:
        row = self._x(
            f"SELECT {_OUT_COLS} FROM outbound_messages o WHERE o.channel_id = ? AND o.mid = ?",
            (channel_id, mid),
        ).fetchone()
        return _outbound(row) if row else None

    def last_customer_message_at(self, channel_id: str, contact_id: str) -> int | None:
        # Through the contact's conversations: both tables have an index for that path.
        row = self._x(
            "SELECT max(m.timestamp_ms) FROM conversations v "
            "JOIN messages m ON m.conversation_id = v.id "
            f"WHERE v.channel_id = ? AND v.contact_id = ? AND m.kind IN {CUSTOMER_KINDS}",
            (channel_id, contact_id),
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def latest_conversation_of(self, channel_id: str, contact_id: str) -> str | None:
        row = self._x(
            "SELECT id FROM conversations WHERE channel_id = ? AND contact_id = ? "
            "ORDER BY CASE WHEN status = 'open' THEN 0 ELSE 1 END, id DESC LIMIT 1",
            (channel_id, contact_id),
        ).fetchone()
        return str(row[0]) if row else None

    def list_conversation_messages(
        self, org_id: str, conversation_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[Message | OutboundMessage]:
        """Both directions, oldest first: a customer's message by Meta's time, an outbound one
        by when it was written (queued, or Meta's time of an echo). `after` is the (time, mid
        or id) of the last one already seen."""
        after_ms, after_key = after if after is not None else (None, None)
        keyset = " AND (CAST(? AS BIGINT) IS NULL OR {t} > ? OR ({t} = ? AND {k} > ?))"
        params = (after_ms, after_ms, after_ms, after_key)
        rows = self._x(
            "SELECT * FROM ("
            " SELECT 'in' AS dir, m.timestamp_ms AS at, m.mid AS k, m.channel_id, m.contact_id,"
            " m.conversation_id, m.text, m.kind, m.received_at_ms, m.mid,"
            " NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
            " FROM messages m JOIN conversations v ON v.id = m.conversation_id"
            " WHERE m.conversation_id = ? AND v.org_id = ? AND m.kind <> 'echo'"
            + keyset.format(t="m.timestamp_ms", k="m.mid")
            + " UNION ALL"
            " SELECT 'out', o.created_at_ms, o.id, o.channel_id, o.contact_id, o.conversation_id,"
            " o.text, o.status, o.updated_at_ms, o.mid, o.org_id, o.recipient_igsid,"
            " o.human_agent, o.attempts, o.next_attempt_at_ms, o.error, o.sent_by, o.sent_at_ms"
            " FROM outbound_messages o WHERE o.conversation_id = ? AND o.org_id = ?"
            + keyset.format(t="o.created_at_ms", k="o.id")
            + ") AS both_ways ORDER BY at, k LIMIT ?",
            (conversation_id, org_id, *params, conversation_id, org_id, *params, limit),
        ).fetchall()
        found: list[Message | OutboundMessage] = []
        for r in rows:
            if r[0] == "in":
                found.append(Message(r[3], r[2], r[4], r[5], r[7], r[6], int(r[1]), int(r[8])))
            else:
                found.append(
                    OutboundMessage(
                        id=str(r[2]),
                        org_id=str(r[10]),
                        channel_id=str(r[3]),
                        contact_id=str(r[4]),
                        conversation_id=r[5],
                        recipient_igsid=str(r[11]),
                        text=str(r[6]),
                        human_agent=bool(r[12]),
                        status=str(r[7]),
                        attempts=int(r[13]),
                        next_attempt_at_ms=r[14],
                        error=r[15],
                        mid=r[9],
                        sent_by=str(r[16]),
                        created_at_ms=int(r[1]),
                        sent_at_ms=r[17],
                        updated_at_ms=int(r[8]),
                    )
                )
        return found

    # the sender -------------------------------------------------------------------------------

    def expire_reply_leases(self, now_ms: int, error: str) -> int:
        """Claims whose worker died mid-call: the reply may have reached Meta, so it is
        `unknown`, and never sent again by itself."""
        cur = self._x(
            "UPDATE outbound_messages SET status = 'unknown', error = ?, lease_until_ms = NULL, "
            "updated_at_ms = ? WHERE status = 'sending' AND lease_until_ms <= ?",
            (error, now_ms, now_ms),
        )
        return cur.rowcount

    def claim_due_replies(self, now_ms: int, lease_until_ms: int, limit: int) -> list[DueReply]:
        ids = [
            str(r[0])
            for r in self._x(
                "UPDATE outbound_messages SET status = 'sending', lease_until_ms = ?, "
                "attempts = attempts + 1, updated_at_ms = ? WHERE id IN ("
                " SELECT id FROM outbound_messages WHERE status = 'queued'"
                " AND next_attempt_at_ms <= ? ORDER BY next_attempt_at_ms LIMIT ?"
                + self.SKIP_LOCKED
                + ") RETURNING id",
                (lease_until_ms, now_ms, now_ms, limit),
            ).fetchall()
        ]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._x(
            "SELECT o.id, o.org_id, o.channel_id, o.conversation_id, ch.account_id, "
            "ch.access_token, o.recipient_igsid, o.text, o.human_agent, o.attempts "
            "FROM outbound_messages o JOIN channels ch ON ch.id = o.channel_id "
            f"WHERE o.id IN ({marks}) ORDER BY o.next_attempt_at_ms, o.id",
            ids,
        ).fetchall()
        return [
            DueReply(
                id=str(r[0]),
                org_id=str(r[1]),
                channel_id=str(r[2]),
                conversation_id=r[3],
                account_id=str(r[4]),
                access_token=self._sealer.open(CHANNEL_TOKEN, str(r[5])),
                recipient_igsid=str(r[6]),
                text=str(r[7]),
                human_agent=bool(r[8]),
                attempts=int(r[9]),
            )
            for r in rows
        ]

    def next_reply_due_at(self) -> int | None:
        row = self._x(
            "SELECT min(t) FROM ("
            " SELECT min(next_attempt_at_ms) AS t FROM outbound_messages WHERE status = 'queued'"
            " UNION ALL"
            " SELECT min(lease_until_ms) FROM outbound_messages WHERE status = 'sending') AS due"
        ).fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def finish_reply(
        self,
        message_id: str,
        attempts: int,
        *,
        status: str,
        error: str | None,
        mid: str | None,
        next_attempt_at_ms: int | None,
        now_ms: int,
    ) -> bool:
        """Record the outcome of attempt `attempts`, if the claim is still this one's. A `sent`
        also lands on a reply already turned `unknown` (its lease ran out while the answer was
        being recorded): Meta's answer is the better knowledge."""
        if status == "sent":
            claimed = (
                "((status = 'sending' AND attempts = ?) OR (status = 'unknown' AND attempts = ?"
                " AND mid IS NULL))"
            )
            where: tuple[Any, ...] = (attempts, attempts)
        else:
            claimed = "status = 'sending' AND attempts = ?"
            where = (attempts,)
        cur = self._x(
            "UPDATE outbound_messages SET status = ?, error = ?, mid = coalesce(?, mid), "
            "next_attempt_at_ms = ?, lease_until_ms = NULL, updated_at_ms = ?, "
            "sent_at_ms = CASE WHEN ? = 'sent' THEN ? ELSE sent_at_ms END "
            f"WHERE id = ? AND {claimed}",
            (status, error, mid, next_attempt_at_ms, now_ms, status, now_ms, message_id, *where),
        )
        return cur.rowcount > 0

    def delete_echo_copy(self, channel_id: str, mid: str, keep_id: str) -> bool:
        """The echo of a reply that came before the Send API's answer was recorded, stored as
        written in the app: the reply itself takes its place."""
        cur = self._x(
            "DELETE FROM outbound_messages WHERE channel_id = ? AND mid = ? AND id <> ? "
            "AND sent_by = 'instagram_app'",
            (channel_id, mid, keep_id),
        )
        return cur.rowcount > 0

    def adopt_echo(
        self, channel_id: str, recipient_igsid: str, text: str, mid: str, now_ms: int
    ) -> str | None:
        """An echo whose mid nobody knows yet, of a reply still `sending` (the answer not yet
        recorded) or `unknown` (the answer lost), with the same customer and text: that reply
        reached Meta. Returns the conversation's id (or "" for none) if one was adopted."""
        row = self._x(
            "UPDATE outbound_messages SET status = 'sent', mid = ?, error = NULL, "
            "lease_until_ms = NULL, sent_at_ms = ?, updated_at_ms = ? WHERE id = ("
            " SELECT id FROM outbound_messages WHERE channel_id = ? AND recipient_igsid = ?"
            " AND text = ? AND mid IS NULL AND status IN ('sending', 'unknown')"
            " ORDER BY created_at_ms, id LIMIT 1)"
            " AND mid IS NULL AND status IN ('sending', 'unknown') RETURNING conversation_id",
            (mid, now_ms, now_ms, channel_id, recipient_igsid, text),
        ).fetchone()
        if row is None:
            return None
        return str(row[0]) if row[0] is not None else ""

    def requeue_reply(self, org_id: str, message_id: str, now_ms: int) -> bool:
        """A person's decision to send a failed or unknown reply again: a fresh schedule."""
        cur = self._x(
            "UPDATE outbound_messages SET status = 'queued', attempts = 0, error = NULL, "
            "next_attempt_at_ms = ?, lease_until_ms = NULL, updated_at_ms = ? "
            "WHERE org_id = ? AND id = ? AND status IN ('failed', 'unknown')",
            (now_ms, now_ms, org_id, message_id),
        )
        return cur.rowcount > 0
