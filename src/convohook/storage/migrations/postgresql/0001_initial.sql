-- PostgreSQL twin of sqlite/0001_initial.sql: same tables, indexes and rules; native types.
-- Times are integer milliseconds since the epoch; ids are time-ordered text (see domain/ids.py).

CREATE TABLE orgs (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE channels (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    type          TEXT NOT NULL,
    handle        TEXT NOT NULL,
    account_id    TEXT NOT NULL UNIQUE,
    access_token  TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX channels_org ON channels(org_id, id);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    org_id          TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    url             TEXT NOT NULL,
    channel_type    TEXT NOT NULL,
    events          TEXT NOT NULL,          -- JSON array of event names
    secret          TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_at_ms   BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
CREATE INDEX webhooks_org ON webhooks(org_id, id);

CREATE TABLE webhook_channels (
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    channel_id TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    PRIMARY KEY (webhook_id, channel_id)
);
CREATE INDEX webhook_channels_channel ON webhook_channels(channel_id);

CREATE TABLE contacts (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL,
    channel_id            TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    igsid                 TEXT NOT NULL,
    customer_id           TEXT NOT NULL UNIQUE,
    username              TEXT,
    name                  TEXT,
    profile_status        TEXT NOT NULL DEFAULT 'unknown'
                          CHECK (profile_status IN ('unknown', 'ok', 'fallback')),
    profile_fetched_at_ms BIGINT,
    created_at_ms         BIGINT NOT NULL,
    UNIQUE (channel_id, igsid)
);
CREATE INDEX contacts_org ON contacts(org_id, id);
CREATE INDEX contacts_username ON contacts(org_id, username);

CREATE TABLE conversations (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL,
    channel_id    TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id    TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    status        TEXT NOT NULL CHECK (status IN ('open', 'done')),
    reason        TEXT NOT NULL,
    opened_at_ms  BIGINT NOT NULL,
    done_at_ms    BIGINT,
    CHECK ((status = 'open') = (done_at_ms IS NULL))
);
-- The rule "at most one open conversation per (channel, customer)" lives here, not only in code.
CREATE UNIQUE INDEX conversations_one_open ON conversations(channel_id, contact_id)
    WHERE status = 'open';
CREATE INDEX conversations_contact_done ON conversations(contact_id, done_at_ms);
CREATE INDEX conversations_org ON conversations(org_id, id);

CREATE TABLE messages (
    channel_id      TEXT NOT NULL,
    mid             TEXT NOT NULL,
    contact_id      TEXT NOT NULL,
    conversation_id TEXT,
    kind            TEXT NOT NULL,
    text            TEXT,
    timestamp_ms    BIGINT NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (channel_id, mid)
);
CREATE INDEX messages_conversation ON messages(conversation_id, timestamp_ms);

CREATE TABLE notifications (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body            BYTEA NOT NULL,
    received_at_ms  BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'failed')),
    processed_at_ms BIGINT,
    error           TEXT
);
CREATE INDEX notifications_pending ON notifications(id) WHERE status = 'pending';

CREATE TABLE events (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL,
    channel_id          TEXT NOT NULL,
    type                TEXT NOT NULL,
    conversation_id     TEXT NOT NULL,
    contact_id          TEXT NOT NULL,
    reason              TEXT,
    payload             BYTEA,               -- NULL while the customer's profile is being fetched
    profile_attempts    BIGINT NOT NULL DEFAULT 0,
    profile_next_at_ms  BIGINT NOT NULL DEFAULT 0,
    profile_deadline_ms BIGINT NOT NULL,
    first_message_text  TEXT,
    first_message_at_ms BIGINT,
    created_at_ms       BIGINT NOT NULL
);
CREATE INDEX events_awaiting_profile ON events(profile_next_at_ms) WHERE payload IS NULL;
CREATE INDEX events_contact_awaiting ON events(contact_id) WHERE payload IS NULL;

CREATE TABLE deliveries (
    id                 TEXT PRIMARY KEY,    -- sent as webhook-id: stable across retries
    org_id             TEXT NOT NULL,
    event_id           TEXT NOT NULL REFERENCES events(id),
    webhook_id         TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'succeeded', 'failed')),
    attempt_count      BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT,
    lease_until_ms     BIGINT,
    last_status_code   BIGINT,
    last_error         TEXT,
    created_at_ms      BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at_ms) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries(lease_until_ms) WHERE status = 'sending';
CREATE INDEX deliveries_webhook ON deliveries(webhook_id, id);

-- Append-only: one row per attempt, never updated.
CREATE TABLE attempts (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id     TEXT NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
    attempt_number  BIGINT NOT NULL,
    attempted_at_ms BIGINT NOT NULL,
    url             TEXT NOT NULL,
    status_code     BIGINT,
    response_body   TEXT,
    duration_ms     DOUBLE PRECISION NOT NULL,
    error           TEXT,
    error_class     TEXT
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, id);

CREATE TABLE bots (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    trigger       TEXT NOT NULL,
    token         TEXT NOT NULL UNIQUE,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX bots_org ON bots(org_id, id);

CREATE TABLE captures (
    id             TEXT PRIMARY KEY,
    bot_id         TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    received_at_ms BIGINT NOT NULL,
    method         TEXT NOT NULL,
    headers        TEXT NOT NULL,           -- JSON object
    body           TEXT NOT NULL
);
CREATE INDEX captures_bot ON captures(bot_id, id);
