"""The model: plain records that use cases, storage and the web share. Times are integer
milliseconds since the epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from convohook.domain.bots import Action, Conditions

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Org:
    id: str
    name: str
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    org_id: str
    type: str
    handle: str
    account_id: str
    access_token: str
    created_at_ms: int
    # Seconds without a message either way after which convohook marks a conversation done;
    # None: never (the default).
    auto_done_after: int | None = None


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    org_id: str
    name: str
    url: str
    channel_type: str
    channel_ids: tuple[str, ...]
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    secret: str
    created_at_ms: int
    updated_at_ms: int
    format: str = "doubletick"  # doubletick | standard
    headers: dict[str, str] = field(default_factory=dict)
    auth_type: str | None = None  # basic | bearer
    auth_value: str | None = None  # "user:password" or the token; never returned by the API
    timeout_s: float | None = None  # None: the server's CONVOHOOK_DELIVERY_TIMEOUT
    failing_since_ms: int | None = None  # first failure of the current unbroken run
    rate_limit_per_s: float | None = None
    max_concurrency: int | None = None
    ordering: str = "none"  # none | fifo (per conversation)
    # Disabled for failing too long: new events still get deliveries, which wait for it.
    queue_while_disabled: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    org_id: str
    channel_id: str
    igsid: str
    customer_id: str
    username: str | None
    name: str | None
    profile_status: str  # unknown | ok | fallback
    profile_fetched_at_ms: int | None
    created_at_ms: int
    # The User Profile API's, for bots' conditions; None where Instagram did not share them.
    follower_count: int | None = None
    is_user_follow_business: bool | None = None
    is_verified_user: bool | None = None


@dataclass(slots=True)
class KnownCustomers:
    """What processing knows of one channel's customers in a batch, read in one go before it:
    then each item is decided without a round trip to the database. Only the IGSIDs and mids
    in `igsids` and `mids_looked_up` were looked up; anything else must be asked of the
    database."""

    igsids: set[str]
    contacts: dict[str, Contact]  # by IGSID
    open_conversations: dict[str, str]  # conversation id, by contact id: locked until commit
    last_done_at_ms: dict[str, int]  # by contact id
    mids_looked_up: set[str]
    mids_stored: set[str]


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    org_id: str
    channel_id: str
    contact: Contact
    status: str  # open | done
    reason: str  # first_message | reopened
    opened_at_ms: int
    done_at_ms: int | None
    assignee_id: str | None = None  # one of the org's users (agents)
    tags: tuple[str, ...] = ()  # sorted
    closed_reason: str | None = None  # manual | inactivity | bot, once done
    # The last message either way: Meta's time of the customer's, the time a reply went out.
    last_message_at_ms: int | None = None
    # When the channel's inactivity rule closes it (last message + auto_done_after), if open
    # and the channel has the rule.
    idle_deadline_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """A customer's message as received; `mid` is Meta's id (or a stand-in for items without)."""

    channel_id: str
    mid: str
    contact_id: str
    conversation_id: str | None
    kind: str
    text: str | None
    timestamp_ms: int
    received_at_ms: int


@dataclass(frozen=True, slots=True)
class Attempt:
    attempt_number: int
    attempted_at_ms: int
    url: str
    status_code: int | None
    response_body: str | None
    duration_ms: float
    error: str | None
    error_class: str | None
    # As sent, Authorization masked; the body only when it is not the delivery's payload.
    request_headers: dict[str, str] | None = None
    request_body: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str  # also the `webhook-id` header: stable across retries
    org_id: str
    event_id: str
    event_type: str
    webhook_id: str
    status: str  # pending | sending | succeeded | failed
    attempt_count: int
    next_attempt_at_ms: int | None
    last_status_code: int | None
    last_error: str | None
    created_at_ms: int
    updated_at_ms: int
    payload: bytes | None
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True, slots=True)
class Bot:
    """A capture bot (trigger `webhook`: a URL that records what it receives) or a journey: a
    trigger, conditions and ordered actions (DESIGN section 7)."""

    id: str
    org_id: str
    name: str
    trigger: str
    token: str
    created_at_ms: int
    conditions: Conditions = field(default_factory=Conditions)
    actions: tuple[Action, ...] = ()
    enabled: bool = True
    updated_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What one action of a run did: `done`, `skipped` (with why) or `failed` (with the error)."""

    type: str
    status: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class BotRun:
    """A bot's run for one triggering event or message. `status`: pending, then done (its
    conditions held and its actions ran, each with its outcome), skipped (a condition did not
    hold, or the bot was disabled meanwhile: `detail` says which) or failed (`detail`)."""

    id: str
    org_id: str
    bot_id: str
    trigger: str
    trigger_key: str
    conversation_id: str
    contact_id: str
    text: str | None
    referral: bool
    reason: str | None
    happened_at_ms: int
    status: str
    detail: str | None
    outcomes: tuple[ActionOutcome, ...]
    created_at_ms: int
    finished_at_ms: int | None


@dataclass(frozen=True, slots=True)
class Capture:
    id: str
    bot_id: str
    received_at_ms: int
    method: str
    headers: dict[str, str]
    body: str


@dataclass(frozen=True, slots=True)
class StoredNotification:
    id: int
    body: bytes
    received_at_ms: int


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """Everything the dispatcher needs to make one attempt, read in the claim."""

    id: str
    webhook_id: str
    url: str
    secret: str
    payload: bytes
    attempt_count: int
    event_id: str = ""
    event_type: str = ""
    event_created_at_ms: int = 0
    reason: str | None = None
    conversation_id: str | None = None
    igsid: str | None = None
    first_message_text: str | None = None
    first_message_at_ms: int | None = None
    format: str = "doubletick"
    headers: dict[str, str] = field(default_factory=dict)
    auth_type: str | None = None
    auth_value: str | None = None
    timeout_s: float | None = None
    previous_secrets: tuple[str, ...] = ()  # still valid during a rotation's grace period
    rate_limit_per_s: float | None = None
    max_concurrency: int | None = None
    org_id: str = ""
    details: str | None = None  # JSON: what the event says beyond the DoubleTick fields
    fifo: bool = False  # the webhook's ordering: its conversation's next delivery waits for this

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.secret, *self.previous_secrets)


@dataclass(frozen=True, slots=True)
class AwaitingProfile:
    """A contact with events that cannot be sent until its profile is known."""

    contact: Contact
    channel_handle: str
    access_token: str
    attempts: int
    deadline_ms: int
    events: int  # how many events wait for this profile


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: str | None


@dataclass(frozen=True, slots=True)
class User:
    """One of an org's people: an agent conversations are assigned to, and, with a password,
    someone who signs in to the UI."""

    id: str
    org_id: str
    email: str
    password_hash: str  # '' for an agent who does not sign in
    created_at_ms: int
    name: str = ""
    available: bool = True  # whether round robin hands them conversations


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf_token: str
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Backlog:
    notifications: int  # stored, not processed yet
    due_deliveries: int  # pending and due now (a disabled webhook's included)
    oldest_due_ms: int | None  # when the longest-waiting due delivery became due
    awaiting_profile: int  # events waiting for a customer's profile


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """What the business sent a customer: a reply through the Send API, or an echo of what it
    wrote in the Instagram app. `status`: queued | sending | sent | failed | unknown."""

    id: str
    org_id: str
    channel_id: str
    contact_id: str
    conversation_id: str | None
    recipient_igsid: str
    text: str
    human_agent: bool
    status: str
    attempts: int
    next_attempt_at_ms: int | None
    error: str | None
    mid: str | None
    sent_by: str  # a user id, "api", "bot" or "instagram_app"
    created_at_ms: int
    sent_at_ms: int | None
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class DueReply:
    """A reply the sender claimed: everything one call to the Send API needs."""

    id: str
    org_id: str
    channel_id: str
    conversation_id: str | None
    account_id: str
    access_token: str
    recipient_igsid: str
    text: str
    human_agent: bool
    attempts: int  # counting the one about to be made
