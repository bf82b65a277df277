"""Contacts: one per customer (IGSID) and channel, with the cached Instagram profile."""

from __future__ import annotations

from convohook.domain.ids import new_customer_id, new_id
from convohook.domain.model import (
    Contact,
)
from convohook.storage.sql.base import (
    CONTACT_COLS,
    SQLBase,
    contact_row,
)


class ContactsSQL(SQLBase):
    def get_or_create_contact(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> Contact:
        return self.contact_for(org_id, channel_id, igsid, now_ms)[0]

    def contact_for(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> tuple[Contact, bool]:
        select = f"SELECT {CONTACT_COLS} FROM contacts c WHERE c.channel_id = ? AND c.igsid = ?"
        row = self._x(select, (channel_id, igsid)).fetchone()
        if row is None:
            row = self._x(
                "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, created_at_ms) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id, igsid) DO NOTHING RETURNING "
                + CONTACT_COLS.replace("c.", ""),
                (new_id("ct", now_ms), org_id, channel_id, igsid, new_customer_id(), now_ms),
            ).fetchone()
            if row is not None:
                return contact_row(row), True
            row = self._x(select, (channel_id, igsid)).fetchone()  # another worker's, since
        return contact_row(row), False

    def create_contact(self, org_id: str, channel_id: str, igsid: str, now_ms: int) -> Contact:
        """A contact known not to exist (`known_customers`): nothing to read back. Should another
        process create it meanwhile, the key fails this transaction (a ConflictError), and the
        retry finds it."""
        contact = Contact(
            id=new_id("ct", now_ms),
            org_id=org_id,
            channel_id=channel_id,
            igsid=igsid,
            customer_id=new_customer_id(),
            username=None,
            name=None,
            profile_status="unknown",
            profile_fetched_at_ms=None,
            created_at_ms=now_ms,
        )
        self._insert(
            "INSERT INTO contacts (id, org_id, channel_id, igsid, customer_id, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (contact.id, org_id, channel_id, igsid, contact.customer_id, now_ms),
        )
        return contact

    def set_contact_profile(
        self,
        contact_id: str,
        username: str,
        name: str | None,
        status: str,
        now_ms: int,
        *,
        follower_count: int | None = None,
        is_user_follow_business: bool | None = None,
        is_verified_user: bool | None = None,
    ) -> None:
        self._x(
            "UPDATE contacts SET username = ?, name = ?, profile_status = ?, "
            "profile_fetched_at_ms = ?, follower_count = ?, is_user_follow_business = ?, "
            "is_verified_user = ? WHERE id = ?",
            (
                username,
                name,
                status,
                now_ms,
                follower_count,
                is_user_follow_business,
                is_verified_user,
                contact_id,
            ),
        )

    def get_contact(self, org_id: str, contact_id: str) -> Contact | None:
        row = self._x(
            f"SELECT {CONTACT_COLS} FROM contacts c WHERE c.org_id = ? AND c.id = ?",
            (org_id, contact_id),
        ).fetchone()
        return contact_row(row) if row else None

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
            f"SELECT {CONTACT_COLS} FROM contacts c WHERE c.org_id = ? "
            "AND (CAST(? AS TEXT) IS NULL OR c.username = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR c.channel_id = ?) "
            "AND (CAST(? AS TEXT) IS NULL OR c.id < ?) ORDER BY c.id DESC LIMIT ?",
            (org_id, handle, handle, channel_id, channel_id, before, before, limit),
        ).fetchall()
        return [contact_row(r) for r in rows]
