"""Organisations, their API keys, the UI's users and their sessions."""

from __future__ import annotations

from convohook.domain.model import (
    Org,
    Session,
    User,
)
from convohook.storage.sql.base import (
    USER_COLS,
    USER_WIDTH,
    SQLBase,
    user_row,
)


class AccountsSQL(SQLBase):
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

    def insert_user(self, user: User) -> None:
        self._x(
            "INSERT INTO users (id, org_id, email, password_hash, created_at_ms, name, available) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                user.org_id,
                user.email,
                user.password_hash,
                user.created_at_ms,
                user.name,
                user.available,
            ),
        )

    def user_by_email(self, email: str) -> User | None:
        row = self._x(f"SELECT {USER_COLS} FROM users u WHERE u.email = ?", (email,)).fetchone()
        return user_row(row) if row else None

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
            f"SELECT {USER_COLS}, s.csrf_token, s.expires_at_ms FROM sessions s "
            "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at_ms > ?",
            (token_hash, now_ms),
        ).fetchone()
        if row is None:
            return None
        width = USER_WIDTH
        return Session(user_row(row[:width]), str(row[width]), int(row[width + 1]))

    def delete_session(self, token_hash: str) -> None:
        self._x("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))
