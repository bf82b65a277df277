"""The SQL both backends share, written once in the common subset of SQLite and PostgreSQL,
one module per aggregate; `SQLTransaction` is all of them together.

Placeholders are `?` (PostgreSQL's backend translates them); a nullable filter is written
`CAST(? AS TEXT) IS NULL` so PostgreSQL can type the parameter; booleans are TRUE/FALSE, which
SQLite reads as 1/0. What differs (row locking, claiming) is a hook the backends set or override.
Every method is one or two statements of plain SQL; no logic beyond mapping rows.
"""

from __future__ import annotations

from convohook.storage.sql.accounts import AccountsSQL
from convohook.storage.sql.agents import AgentsSQL
from convohook.storage.sql.base import Cursor, SQLBase
from convohook.storage.sql.bots import BotsSQL
from convohook.storage.sql.channels import ChannelsSQL
from convohook.storage.sql.contacts import ContactsSQL
from convohook.storage.sql.conversations import ConversationsSQL
from convohook.storage.sql.deliveries import FIFO_READY, DeliveriesSQL
from convohook.storage.sql.notifications import NotificationsSQL
from convohook.storage.sql.outbox import OutboxSQL
from convohook.storage.sql.replies import RepliesSQL
from convohook.storage.sql.upkeep import UpkeepSQL
from convohook.storage.sql.webhooks import WebhooksSQL

__all__ = ["FIFO_READY", "Cursor", "SQLBase", "SQLTransaction"]


class SQLTransaction(
    AccountsSQL,
    AgentsSQL,
    ChannelsSQL,
    WebhooksSQL,
    ContactsSQL,
    ConversationsSQL,
    OutboxSQL,
    DeliveriesSQL,
    NotificationsSQL,
    BotsSQL,
    RepliesSQL,
    UpkeepSQL,
):
    """A transaction's statements: a backend subclasses it and provides `_x` and `_many`."""
