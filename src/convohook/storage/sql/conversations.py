"""Conversations and the customers' messages; the (channel, mid) key makes Meta's redeliveries
harmless."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convohook.domain.model import (
    Conversation,
    KnownCustomers,
    Message,
)
from convohook.storage.sql.base import (
    CONTACT_COLS,
    Cursor,
    SQLBase,
    chunks,
    contact_row,
    placeholders,
)


def _deadline(last_message_at: str, channel_id: str) -> str:
    """The deadline (domain/inactivity.py) of a conversation of channel `channel_id` whose last
    message went at `last_message_at` (SQL expressions): NULL when the channel has no rule."""
    return (
        f"(SELECT {last_message_at} + ch.auto_done_after * 1000 FROM channels ch "
        f"WHERE ch.id = {channel_id})"
    )


class ConversationsSQL(SQLBase):
    def known_customers(
        self, channel_id: str, igsids: Sequence[str], mids: Sequence[str]
    ) -> KnownCustomers:
        """A batch's customers of one channel as stored, in two round trips on PostgreSQL
        (pipelined: every statement of a step is sent before any result is read): their
        contacts and the mids already stored; then, for the customers already known only,
        their open conversations (locked, as `open_conversation_of` locks one) and when
        their last conversation was marked done.

        The second step looks conversations up by contact id, not through a subquery on
        contacts: on tables that grew fast since they were last analyzed (a new install's
        first burst), PostgreSQL planned the subquery as a scan of every open conversation
        of the channel, 5 to 80 ms a batch instead of 0.1."""
        known = KnownCustomers(
            igsids=set(igsids),
            contacts={},
            open_conversations={},
            last_done_at_ms={},
            mids_looked_up=set(mids),
            mids_stored=set(),
        )
        contacts = [
            self._x(
                f"SELECT {CONTACT_COLS} FROM contacts c "
                f"WHERE c.channel_id = ? AND c.igsid IN ({placeholders(part)})",
                (channel_id, *part),
            )
            for part in chunks(sorted(known.igsids))
        ]
        stored = [
            self._x(
                f"SELECT mid FROM messages WHERE channel_id = ? AND mid IN ({placeholders(part)})",
                (channel_id, *part),
            )
            for part in chunks(sorted(known.mids_looked_up))
        ]
        for cursor in contacts:
            for row in cursor.fetchall():
                contact = contact_row(row)
                known.contacts[contact.igsid] = contact
        for cursor in stored:
            known.mids_stored.update(str(row[0]) for row in cursor.fetchall())
        steps: list[tuple[Cursor, Cursor]] = []
        for part in chunks(sorted(c.id for c in known.contacts.values())):
            in_list = placeholders(part)
            steps.append(
                (
                    self._x(
                        "SELECT contact_id, id FROM conversations WHERE channel_id = ? "
                        f"AND status = 'open' AND contact_id IN ({in_list}) ORDER BY id"
                        + self.FOR_UPDATE,
                        (channel_id, *part),
                    ),
                    self._x(
                        "SELECT contact_id, max(done_at_ms) FROM conversations "
                        f"WHERE contact_id IN ({in_list}) AND done_at_ms IS NOT NULL "
                        "GROUP BY contact_id",
                        part,
                    ),
                )
            )
        for open_rows, done_rows in steps:
            for row in open_rows.fetchall():
                known.open_conversations[str(row[0])] = str(row[1])
            for row in done_rows.fetchall():
                known.last_done_at_ms[str(row[0])] = int(row[1])
        return known

    def add_message(
        self,
        channel_id: str,
        mid: str,
        contact_id: str,
        kind: str,
        text: str | None,
        timestamp_ms: int,
        now_ms: int,
        conversation_id: str | None = None,
    ) -> None:
        """A message known not to be stored (`known_customers`): nothing to read back. Should
        another process store it meanwhile, the key fails this transaction (a ConflictError),
        and the retry finds it stored."""
        self._insert(
            "INSERT INTO messages (channel_id, mid, contact_id, kind, text, timestamp_ms, "
            "received_at_ms, conversation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (channel_id, mid, contact_id, kind, text, timestamp_ms, now_ms, conversation_id),
        )

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

    def open_conversation_of(self, channel_id: str, contact_id: str) -> str | None:
        row = self._x(
            "SELECT id FROM conversations WHERE channel_id = ? AND contact_id = ? "
            "AND status = 'open'" + self.FOR_UPDATE,
            (channel_id, contact_id),
        ).fetchone()
        return str(row[0]) if row else None

    def conversation_reason(self, conversation_id: str) -> str | None:
        """How it opened: first_message or reopened."""
        row = self._x(
            "SELECT reason FROM conversations WHERE id = ?", (conversation_id,)
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
        last_message_at_ms: int | None = None,
    ) -> None:
        last = opened_at_ms if last_message_at_ms is None else last_message_at_ms
        self._insert(
            "INSERT INTO conversations (id, org_id, channel_id, contact_id, status, reason, "
            "opened_at_ms, last_message_at_ms, idle_deadline_ms) VALUES (?, ?, ?, ?, 'open', ?, "
            "?, ?, " + _deadline("CAST(? AS BIGINT)", "?") + ")",
            (
                conversation_id,
                org_id,
                channel_id,
                contact_id,
                reason,
                opened_at_ms,
                last,
                last,
                channel_id,
            ),
        )

    def touch_conversation(self, conversation_id: str, message_at_ms: int) -> None:
        # Meta delivers out of order: an older message leaves the time as it is.
        # The deadline moves with it, in the same statement: whoever touches a conversation
        # (a customer's message, a reply) cannot forget it.
        self._x(
            "UPDATE conversations SET last_message_at_ms = ?, idle_deadline_ms = CASE "
            "WHEN status = 'open' THEN "
            + _deadline("CAST(? AS BIGINT)", "conversations.channel_id")
            + " END WHERE id = ? AND (last_message_at_ms IS NULL OR last_message_at_ms < ?)",
            (message_at_ms, message_at_ms, conversation_id, message_at_ms),
        )

    def lock_conversation(self, conversation_id: str) -> None:
        self._x("SELECT id FROM conversations WHERE id = ?" + self.FOR_UPDATE, (conversation_id,))

    def mark_done(self, conversation_id: str, done_at_ms: int, reason: str = "manual") -> bool:
        cur = self._x(
            "UPDATE conversations SET status = 'done', done_at_ms = ?, closed_reason = ?, "
            "idle_deadline_ms = NULL WHERE id = ? AND status = 'open'",
            (done_at_ms, reason, conversation_id),
        )
        return cur.rowcount > 0

    def reschedule_idle(self, channel_id: str, after_contact_id: str, limit: int) -> str | None:
        rows = self._x(
            "UPDATE conversations SET idle_deadline_ms = "
            + _deadline("conversations.last_message_at_ms", "conversations.channel_id")
            + " WHERE id IN (SELECT id FROM conversations WHERE channel_id = ? "
            "AND status = 'open' AND contact_id > ? ORDER BY contact_id LIMIT ?) "
            "RETURNING contact_id",
            (channel_id, after_contact_id, limit),
        ).fetchall()
        return max(str(r[0]) for r in rows) if len(rows) >= limit else None

    def claim_idle_conversations(self, now_ms: int, limit: int) -> list[str]:
        rows = self._x(
            "SELECT id FROM conversations WHERE status = 'open' "
            "AND idle_deadline_ms <= ? ORDER BY idle_deadline_ms LIMIT ?" + self.SKIP_LOCKED,
            (now_ms, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def close_idle(self, conversation_ids: Sequence[str], now_ms: int) -> list[str]:
        if not conversation_ids:
            return []
        marks = ",".join("?" * len(conversation_ids))
        # The condition is the re-check: a message attached since the claim moved the deadline
        # past `now_ms` (or a person closed it), and then that one is left as it is; a deadline
        # that a change of the setting has not reached yet is not the one that counts.
        rows = self._x(
            "UPDATE conversations SET status = 'done', done_at_ms = idle_deadline_ms, "
            "closed_reason = 'inactivity', idle_deadline_ms = NULL "
            f"WHERE id IN ({marks}) AND status = 'open' AND idle_deadline_ms <= ? "
            "AND idle_deadline_ms = "
            + _deadline("conversations.last_message_at_ms", "conversations.channel_id")
            + " RETURNING id",
            (*conversation_ids, now_ms),
        ).fetchall()
        return sorted(str(r[0]) for r in rows)

    def refresh_idle(self, conversation_ids: Sequence[str]) -> None:
        if conversation_ids:
            marks = ",".join("?" * len(conversation_ids))
            self._x(
                "UPDATE conversations SET idle_deadline_ms = "
                + _deadline("conversations.last_message_at_ms", "conversations.channel_id")
                + f" WHERE id IN ({marks}) AND status = 'open'",
                list(conversation_ids),
            )

    def conversations_by_id(self, conversation_ids: Sequence[str]) -> list[Conversation]:
        if not conversation_ids:
            return []
        marks = ",".join("?" * len(conversation_ids))
        rows = self._x(
            self._CONVERSATION_SELECT + f"WHERE v.id IN ({marks}) ORDER BY v.id",
            list(conversation_ids),
        ).fetchall()
        return self._conversations(rows)

    _CONVERSATION_SELECT = (
        "SELECT v.id, v.org_id, v.channel_id, v.status, v.reason, v.opened_at_ms, v.done_at_ms, "
        "v.assignee_id, v.closed_reason, v.last_message_at_ms, v.idle_deadline_ms, "
        f"{CONTACT_COLS} FROM conversations v JOIN contacts c ON c.id = v.contact_id "
    )

    def _conversations(self, rows: Sequence[Sequence[Any]]) -> list[Conversation]:
        tags = self._tags_of([str(r[0]) for r in rows])
        return [
            Conversation(
                id=str(r[0]),
                org_id=str(r[1]),
                channel_id=str(r[2]),
                status=str(r[3]),
                reason=str(r[4]),
                opened_at_ms=int(r[5]),
                done_at_ms=r[6],
                assignee_id=r[7],
                closed_reason=r[8],
                last_message_at_ms=r[9],
                idle_deadline_ms=r[10],
                tags=tuple(tags[str(r[0])]),
                contact=contact_row(r[11:]),
            )
            for r in rows
        ]

    def _tags_of(self, conversation_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {i: [] for i in conversation_ids}
        if conversation_ids:
            marks = ",".join("?" * len(conversation_ids))
            for conversation_id, tag in self._x(
                "SELECT conversation_id, tag FROM conversation_tags "
                f"WHERE conversation_id IN ({marks}) ORDER BY tag",
                list(conversation_ids),
            ).fetchall():
                found[str(conversation_id)].append(str(tag))
        return found

    def get_conversation(self, org_id: str, conversation_id: str) -> Conversation | None:
        row = self._x(
            self._CONVERSATION_SELECT + "WHERE v.org_id = ? AND v.id = ?",
            (org_id, conversation_id),
        ).fetchone()
        return self._conversations([row])[0] if row else None

    def list_conversations(
        self,
        org_id: str,
        *,
        status: str | None,
        channel_id: str | None,
        contact_id: str | None,
        before: str | None,
        limit: int,
        assignee_id: str | None = None,
        unassigned: bool = False,
        tag: str | None = None,
    ) -> list[Conversation]:
        rows = self._x(
            self._CONVERSATION_SELECT
            + "WHERE v.org_id = ? AND (CAST(? AS TEXT) IS NULL OR v.status = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.channel_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.contact_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR v.assignee_id = ?) "
            "AND (CAST(? AS INTEGER) = 0 OR v.assignee_id IS NULL) "
            "AND (CAST(? AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM conversation_tags t "
            "WHERE t.conversation_id = v.id AND t.tag = ?)) "
            "AND (CAST(? AS TEXT) IS NULL OR v.id < ?) ORDER BY v.id DESC LIMIT ?",
            (
                org_id,
                status,
                status,
                channel_id,
                channel_id,
                contact_id,
                contact_id,
                assignee_id,
                assignee_id,
                int(unassigned),
                tag,
                tag,
                before,
                before,
                limit,
            ),
        ).fetchall()
        return self._conversations(rows)

    def set_assignee(self, conversation_id: str, assignee_id: str | None) -> None:
        self._x(
            "UPDATE conversations SET assignee_id = ? WHERE id = ?", (assignee_id, conversation_id)
        )

    def add_tags(self, org_id: str, conversation_id: str, tags: Sequence[str], now_ms: int) -> None:
        self._many(
            "INSERT INTO conversation_tags (org_id, conversation_id, tag, created_at_ms) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (conversation_id, tag) DO NOTHING",
            [(org_id, conversation_id, tag, now_ms) for tag in tags],
        )

    def remove_tags(self, conversation_id: str, tags: Sequence[str]) -> None:
        self._many(
            "DELETE FROM conversation_tags WHERE conversation_id = ? AND tag = ?",
            [(conversation_id, tag) for tag in tags],
        )
