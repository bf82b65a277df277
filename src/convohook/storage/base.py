"""The storage port: what use cases ask of a database, one method per question.

A backend implements `Storage` (connections, migrations, transactions) and `Transaction` (the SQL).
Use cases are plain functions taking a `Transaction`; `Database` runs them off the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from convohook.domain.model import (
    ActionOutcome,
    Attempt,
    AwaitingProfile,
    Backlog,
    Bot,
    BotRun,
    Capture,
    Channel,
    Contact,
    Conversation,
    Delivery,
    DueDelivery,
    DueReply,
    KnownCustomers,
    Message,
    Org,
    OutboundMessage,
    Session,
    StoredNotification,
    User,
    Webhook,
)
from convohook.storage.at_commit import AtCommit

MigrationProgress = Callable[[str, float | None], None]


class AccountStore(Protocol):
    """Organisations, their API keys, the UI's users and their sessions."""

    def insert_org(self, org: Org) -> None: ...
    def insert_api_key(self, key_id: str, org_id: str, key_hash: str, now_ms: int) -> None: ...
    def org_for_key_hash(self, key_hash: str) -> Org | None: ...
    def insert_user(self, user: User) -> None: ...
    def user_by_email(self, email: str) -> User | None: ...
    def insert_session(
        self, token_hash: str, user_id: str, csrf_token: str, now_ms: int, expires_at_ms: int
    ) -> None: ...
    def session_by_hash(self, token_hash: str, now_ms: int) -> Session | None: ...
    def delete_session(self, token_hash: str) -> None: ...


class AgentStore(Protocol):
    """An org's users seen as agents, and round robin's turn."""

    def list_agents(self, org_id: str, before: str | None, limit: int) -> list[User]: ...
    def get_agent(self, org_id: str, agent_id: str) -> User | None: ...
    def update_agent(
        self, org_id: str, agent_id: str, *, name: str | None, available: bool | None
    ) -> User | None:
        """Change what is given (None keeps a field); the agent after, None if not the org's."""
        ...

    def take_round_robin_turn(self, org_id: str) -> User | None:
        """The next available agent after the one who had the last turn (in id order, wrapping
        around), now the one who had it; None when nobody is available. The turn is the org's
        row, held until this transaction ends: concurrent takers wait and get the next one."""
        ...


class ChannelStore(Protocol):
    """Channels: the Instagram accounts an org connected."""

    def insert_channel(self, channel: Channel) -> None: ...
    def list_channels(self, org_id: str, before: str | None, limit: int) -> list[Channel]: ...
    def get_channel(self, org_id: str, channel_id: str) -> Channel | None: ...
    def channel_by_account(self, account_id: str) -> Channel | None: ...
    def lock_channel(self, org_id: str, channel_id: str) -> Channel | None:
        """Read it to change it: until this transaction ends, whoever else changes it waits."""
        ...

    def update_channel(self, channel: Channel) -> None:
        """Its handle, access token and auto_done_after (the deadlines: `start_rescheduling`)."""
        ...

    def start_rescheduling(self, channel_id: str) -> None:
        """Its auto_done_after changed: the open conversations' deadlines are to be recomputed
        (`reschedule_idle`), from the first."""
        ...

    def claim_rescheduling(self) -> tuple[str, str] | None:
        """A channel whose deadlines are being recomputed, and the contact id they are done up
        to; held until this transaction ends (PostgreSQL skips one another transaction holds)."""
        ...

    def rescheduled(self, channel_id: str, to_contact_id: str | None) -> None:
        """Recomputed up to this contact id; None: all done."""
        ...


class WebhookStore(Protocol):
    """Webhooks, their channels, previous secrets during a rotation, endpoint health."""

    def insert_webhook(self, webhook: Webhook) -> None: ...
    def update_webhook(self, webhook: Webhook) -> None: ...
    def delete_webhook(self, org_id: str, webhook_id: str) -> bool: ...
    def get_webhook(self, org_id: str, webhook_id: str) -> Webhook | None: ...
    def lock_webhook(self, org_id: str, webhook_id: str) -> Webhook | None:
        """Read it to change it: until this transaction ends, whoever else changes it waits."""
        ...

    def list_webhooks(self, org_id: str, before: str | None, limit: int) -> list[Webhook]: ...
    def subscriber_ids(self, channel_id: str, event_type: str) -> list[str]: ...
    def disable_webhook(
        self, webhook_id: str, reason: str, now_ms: int, *, keep_queue: bool = False
    ) -> bool: ...
    def ops_webhooks_for(self, org_id: str, event_type: str) -> list[Webhook]: ...
    def keep_previous_secret(
        self, webhook_id: str, secret: str, expires_at_ms: int, now_ms: int
    ) -> None: ...
    def webhook_failing(self, webhook_id: str, now_ms: int) -> int: ...
    def webhook_healthy(self, webhook_id: str) -> None: ...
    def recover_deliveries(self, webhook_id: str, since_ms: int, now_ms: int) -> int: ...


class ContactStore(Protocol):
    """One contact per customer (IGSID) and channel, with its cached profile."""

    def get_or_create_contact(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> Contact: ...
    def contact_for(
        self, org_id: str, channel_id: str, igsid: str, now_ms: int
    ) -> tuple[Contact, bool]:
        """The contact, and whether this transaction created it (then it has no history)."""
        ...

    def create_contact(self, org_id: str, channel_id: str, igsid: str, now_ms: int) -> Contact:
        """A contact `known_customers` found missing. Another process's, created meanwhile,
        fails the transaction with a ConflictError."""
        ...

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
    ) -> None: ...
    def get_contact(self, org_id: str, contact_id: str) -> Contact | None: ...
    def list_contacts(
        self,
        org_id: str,
        *,
        handle: str | None,
        channel_id: str | None,
        before: str | None,
        limit: int,
    ) -> list[Contact]: ...


class ConversationStore(Protocol):
    """Conversations and the customers' messages; the (channel, mid) key is what makes Meta's
    redeliveries harmless."""

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
    ) -> bool: ...
    def known_customers(
        self, channel_id: str, igsids: Sequence[str], mids: Sequence[str]
    ) -> KnownCustomers:
        """What a batch needs of these customers and mids, read at once (on PostgreSQL, one
        round trip); their open conversations locked."""
        ...

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
        """A message `known_customers` found missing. Another process's, stored meanwhile,
        fails the transaction with a ConflictError."""
        ...

    def list_messages(
        self, org_id: str, conversation_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[Message]:
        """Oldest first; `after` is the (timestamp_ms, mid) of the last message already seen."""
        ...

    def open_conversation_of(self, channel_id: str, contact_id: str) -> str | None: ...
    def conversation_reason(self, conversation_id: str) -> str | None: ...
    def last_done_at(self, channel_id: str, contact_id: str) -> int | None: ...
    def insert_conversation(
        self,
        conversation_id: str,
        org_id: str,
        channel_id: str,
        contact_id: str,
        reason: str,
        opened_at_ms: int,
        last_message_at_ms: int | None = None,
    ) -> None: ...
    def touch_conversation(self, conversation_id: str, message_at_ms: int) -> None:
        """A message went either way at `message_at_ms`: the conversation's last, if later."""
        ...

    def lock_conversation(self, conversation_id: str) -> None: ...
    def mark_done(self, conversation_id: str, done_at_ms: int, reason: str = "manual") -> bool:
        """Close it if open; `reason`: manual, inactivity or bot."""
        ...

    def reschedule_idle(self, channel_id: str, after_contact_id: str, limit: int) -> str | None:
        """Give up to `limit` open conversations of the channel, in contact id order after
        `after_contact_id`, the deadline its auto_done_after gives them (or none); returns the
        last contact id done, or None when there were no more."""
        ...

    def claim_idle_conversations(self, now_ms: int, limit: int) -> list[str]:
        """Up to `limit` open conversations whose deadline is at or before `now_ms`, earliest
        first, locked until this transaction ends (PostgreSQL skips those another transaction
        holds)."""
        ...

    def close_idle(self, conversation_ids: Sequence[str], now_ms: int) -> list[str]:
        """Mark done for inactivity, at their deadlines, those still open and still due at
        `now_ms`; returns their ids (the others had a message or a person come first)."""
        ...

    def refresh_idle(self, conversation_ids: Sequence[str]) -> None:
        """The deadline their channel's auto_done_after gives them now, for those still open."""
        ...

    def conversations_by_id(self, conversation_ids: Sequence[str]) -> list[Conversation]:
        """Whichever org they belong to: for the workers."""
        ...

    def get_conversation(self, org_id: str, conversation_id: str) -> Conversation | None: ...
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
    ) -> list[Conversation]: ...
    def set_assignee(self, conversation_id: str, assignee_id: str | None) -> None: ...
    def add_tags(
        self, org_id: str, conversation_id: str, tags: Sequence[str], now_ms: int
    ) -> None: ...
    def remove_tags(self, conversation_id: str, tags: Sequence[str]) -> None: ...


class OutboxStore(Protocol):
    """The outbox: events and their deliveries, written in the transaction that decided them."""

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
        profile_claimed_until_ms: int = 0,  # > now: the writer looks the profile up itself
        details: str | None = None,  # JSON: what the event says beyond the DoubleTick fields
    ) -> None: ...
    def insert_deliveries(
        self,
        rows: Iterable[tuple[str, str]],
        event_id: str,
        org_id: str,
        now_ms: int,
        ready: bool = True,
    ) -> None: ...
    def claim_awaiting_profiles(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[AwaitingProfile]: ...
    def events_awaiting_profiles(
        self, contact_ids: Sequence[str]
    ) -> dict[str, list[tuple[str, str, str | None]]]:
        """By contact, (id, type, details) of each of its events waiting for its profile, in
        order; one read for them all."""
        ...

    def set_event_payload(self, event_id: str, payload: bytes, now_ms: int) -> None: ...
    def postpone_profile(self, contact_id: str, attempts: int, next_at_ms: int) -> None: ...


class DeliveryStore(Protocol):
    """Deliveries: claims under a lease, the append-only attempt log, the delivery log."""

    def claim_due_deliveries(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> list[DueDelivery]: ...
    def next_due_at(self) -> int | None: ...
    def claim_and_next_due(
        self, now_ms: int, lease_until_ms: int, limit: int
    ) -> AtCommit[tuple[list[DueDelivery], int | None]]:
        """`claim_due_deliveries`, and when it claimed fewer than `limit` (none is left due),
        `next_due_at` after it; None when it claimed `limit`. Read once the transaction has
        committed: make it the transaction's last statement."""
        ...

    def record_attempt(self, delivery_id: str, attempt: Attempt) -> None: ...
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
        heals_webhook: str | None = None,
    ) -> None:
        """An attempt's outcome. `heals_webhook`: a success that ends this webhook's failure
        streak too (`webhook_healthy`), in the same statement where the database can."""
        ...

    def get_delivery(self, org_id: str, delivery_id: str) -> Delivery | None: ...
    def list_deliveries(
        self, org_id: str, webhook_id: str, before: str | None, limit: int
    ) -> list[Delivery]: ...
    def reschedule_delivery(self, delivery_id: str, now_ms: int) -> None: ...
    def defer_deliveries(self, rows: Sequence[tuple[str, int]], now_ms: int) -> None: ...
    def delivery_counts(self, org_id: str) -> dict[str, tuple[int, int]]: ...


class NotificationStore(Protocol):
    """Meta's notifications: stored before Meta gets its 200, processed in order."""

    def insert_notification(self, body: bytes, now_ms: int) -> int: ...
    def insert_notifications(self, bodies: Sequence[bytes], now_ms: int) -> None:
        """Many at once (the inbound group commit), in order."""
        ...

    def pending_notifications(self, limit: int) -> list[StoredNotification]: ...
    def mark_notifications_processed(
        self, ids: Sequence[int], now_ms: int, error: str | None = None
    ) -> None: ...


class BotStore(Protocol):
    """Bots (capture URLs and journeys), what capture URLs received, and journeys' runs."""

    def insert_bot(self, bot: Bot) -> None: ...
    def update_bot(self, bot: Bot) -> None: ...
    def delete_bot(self, org_id: str, bot_id: str) -> bool: ...
    def get_bot(self, org_id: str, bot_id: str) -> Bot | None: ...
    def lock_bot(self, org_id: str, bot_id: str) -> Bot | None: ...
    def bots_for(self, org_id: str, trigger: str) -> list[Bot]: ...
    def insert_bot_runs(self, runs: Sequence[BotRun]) -> None: ...
    def claim_bot_runs(self, limit: int, now_ms: int, webhook_first_ms: int) -> list[BotRun]: ...
    def finish_bot_run(
        self,
        run_id: str,
        status: str,
        detail: str | None,
        outcomes: Sequence[ActionOutcome],
        now_ms: int,
    ) -> bool: ...
    def list_bot_runs(self, bot_id: str, before: str | None, limit: int) -> list[BotRun]: ...
    def has_pending_bot_runs(self) -> bool: ...
    def list_bots(self, org_id: str, before: str | None, limit: int) -> list[Bot]: ...
    def bot_by_token(self, token: str) -> Bot | None: ...
    def insert_capture(self, capture: Capture) -> None: ...
    def list_captures(self, bot_id: str, before: str | None, limit: int) -> list[Capture]: ...


class ReplyStore(Protocol):
    """Outbound messages: replies claimed by the sender under a lease and sent at most once,
    echoes matched by mid, and a conversation's messages in both directions."""

    def insert_outbound(self, message: OutboundMessage) -> bool:
        """False when its mid is stored already."""
        ...

    def get_outbound(self, org_id: str, message_id: str) -> OutboundMessage | None: ...
    def outbound_by_mid(self, channel_id: str, mid: str) -> OutboundMessage | None: ...
    def last_customer_message_at(self, channel_id: str, contact_id: str) -> int | None:
        """Meta's time of the customer's last message on the channel: the reply window's clock."""
        ...

    def latest_conversation_of(self, channel_id: str, contact_id: str) -> str | None:
        """The open conversation, else the most recent one."""
        ...

    def list_conversation_messages(
        self, org_id: str, conversation_id: str, after: tuple[int, str] | None, limit: int
    ) -> list[Message | OutboundMessage]:
        """Both directions, oldest first; `after` is the (time, mid or id) of the last seen."""
        ...

    def expire_reply_leases(self, now_ms: int, error: str) -> int: ...
    def claim_due_replies(self, now_ms: int, lease_until_ms: int, limit: int) -> list[DueReply]: ...
    def next_reply_due_at(self) -> int | None: ...
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
        """Record attempt `attempts`' outcome if the claim is still its own."""
        ...

    def delete_echo_copy(self, channel_id: str, mid: str, keep_id: str) -> bool: ...
    def adopt_echo(
        self, channel_id: str, recipient_igsid: str, text: str, mid: str, now_ms: int
    ) -> str | None:
        """Mark the reply this echo proves sent; its conversation id ("" for none), or None."""
        ...

    def requeue_reply(self, org_id: str, message_id: str, now_ms: int) -> bool: ...


class UpkeepStore(Protocol):
    """The schema version, the backlog, secrets at rest and retention (bounded batches, oldest
    first)."""

    def applied_migrations(self) -> set[int]: ...
    def backlog(self, now_ms: int) -> Backlog: ...
    def secrets_at_rest(self) -> list[tuple[str, str, str]]: ...
    def reseal_secret(self, column: str, row_id: str, stored: str, value: str) -> bool: ...
    def delete_finished_deliveries(self, before_ms: int, limit: int) -> int: ...
    def delete_orphan_events(self, before_ms: int, limit: int) -> int: ...
    def delete_processed_notifications(self, before_ms: int, limit: int) -> int: ...
    def delete_captures(self, before_ms: int, limit: int) -> int: ...
    def delete_finished_bot_runs(self, before_ms: int, limit: int) -> int: ...


class Transaction(
    AccountStore,
    AgentStore,
    ChannelStore,
    WebhookStore,
    ContactStore,
    ConversationStore,
    OutboxStore,
    DeliveryStore,
    NotificationStore,
    BotStore,
    ReplyStore,
    UpkeepStore,
    Protocol,
):
    """Everything a use case may ask of the database in one transaction."""

    def use_cached_config(self) -> None:
        """Let this transaction's reads of channels by account, subscribed webhooks and bots
        come from what this process read before, while the configuration is unchanged
        (storage/config_cache.py). For transactions that change no configuration; call it
        before any other statement."""
        ...


class Storage(Protocol):
    """A connected backend. Not thread-safe: `Database` calls it from one place at a time."""

    dialect: str

    def migrate(self, progress: MigrationProgress | None = None) -> list[str]:
        """Apply pending migrations in order; returns their names. `progress(name, None)` as
        one starts, `progress(name, seconds)` once it is committed."""
        ...

    def pending_migrations(self) -> list[str]: ...
    def transaction(
        self, *, write: bool = True, durable: bool = True
    ) -> AbstractContextManager[Transaction]:
        """`durable=False`: the commit may be lost to a power cut (never to a crash of ours)
        until the next durable commit, which makes it durable too: both backends write one log,
        in order. For work nobody outside has seen yet and that can be redone from durable
        state; whatever precedes an acknowledgement or a webhook sent is committed durably."""
        ...

    # Whether `listen` polls (SQLite: it reads the file every few milliseconds). Then it is
    # worth running only where another process writes work for this one; NOTIFY costs
    # nothing while idle.
    listen_polls: bool

    def listen(self, on_change: Callable[[str], None], stop: threading.Event) -> None:
        """Block until `stop` is set, calling `on_change(kind)` when work was committed by
        another process (whatever writes work in this one wakes its loops itself; a backend
        may pass over this process's own commits, PostgreSQL does): `kind` is
        "notifications", "profiles", "deliveries",
        "replies", or "*" for anything (also once at the start, for what was committed
        before). Keeps trying after a lost connection; the workers' idle poll covers the gap.
        Call it in a thread."""
        ...

    def workers_waiting(self, waiting: Callable[[str], bool] | None) -> None:
        """Tell the storage which kinds of work this process's own workers wait for right now
        (`waiting(kind)`, called from the database's threads; None: no workers here). Work of
        such a kind written here need not be announced to other processes: the writer wakes
        its worker in memory, which takes it at once."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LoopStorage(Storage, Protocol):
    """A backend whose statements are fast enough to run on the event loop itself (SQLite: a
    file in this process), provided nothing on the loop waits for the disk or for another
    process. So the commit does not wait for the disk (`durable=False`) and `sync_log` makes
    it durable afterwards, from a thread; and `wait=False` makes a lock held elsewhere fail at
    once (`BusyError`), so the caller can wait for it in a thread instead."""

    def transaction(
        self, *, write: bool = True, durable: bool = True, wait: bool = True
    ) -> AbstractContextManager[Transaction]: ...

    def sync_log(self) -> None:
        """Block until every commit made so far, by any connection, survives a power cut."""
        ...

    def start_checkpointer(self) -> None:
        """Keep the log's upkeep (copying it into the database) off the event loop."""
        ...
