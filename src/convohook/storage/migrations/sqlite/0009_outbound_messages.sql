-- Replies (DESIGN section 7): what the business sends a customer through Instagram's Send API,
-- and what it wrote elsewhere (the Instagram app), learnt from Meta's echoes. A reply is durable
-- work for the sender: queued, claimed under a lease (sending), then sent, failed or unknown.
-- `unknown` is a send that may have reached Meta (a timeout, a crash mid-call): it is never
-- repeated by itself, only by a person's retry.
CREATE TABLE outbound_messages (
    id                 TEXT PRIMARY KEY,
    org_id             TEXT NOT NULL,
    channel_id         TEXT NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
    contact_id         TEXT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    -- NULL only for an echo to a customer with no conversation yet.
    conversation_id    TEXT REFERENCES conversations(id) ON DELETE CASCADE,
    recipient_igsid    TEXT NOT NULL,
    text               TEXT NOT NULL,
    human_agent        INTEGER NOT NULL DEFAULT 0 CHECK (human_agent IN (0, 1)),
    status             TEXT NOT NULL
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'unknown')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    lease_until_ms     INTEGER,
    error              TEXT,
    mid                TEXT,  -- Meta's message_id, from the Send API's answer or an echo
    sent_by            TEXT NOT NULL,  -- a user id, 'api', 'bot' or 'instagram_app'
    created_at_ms      INTEGER NOT NULL,  -- the listing's order (an echo's: Meta's timestamp)
    sent_at_ms         INTEGER,
    updated_at_ms      INTEGER NOT NULL
);
-- An echo finds its reply by mid, and a mid is stored once.
CREATE UNIQUE INDEX outbound_messages_mid ON outbound_messages(channel_id, mid)
    WHERE mid IS NOT NULL;
-- The sender's claim: due queued replies, and claims whose worker died.
CREATE INDEX outbound_messages_due ON outbound_messages(next_attempt_at_ms)
    WHERE status = 'queued';
CREATE INDEX outbound_messages_leased ON outbound_messages(lease_until_ms)
    WHERE status = 'sending';
-- An echo that comes before the Send API's answer looks for its reply among those without a
-- mid (few: queued, sending, failed, unknown).
CREATE INDEX outbound_messages_unconfirmed ON outbound_messages(channel_id, recipient_igsid)
    WHERE mid IS NULL;
-- A conversation's messages in order.
CREATE INDEX outbound_messages_conversation ON outbound_messages(conversation_id, created_at_ms, id);

-- Echoes were kept with the customers' messages until now: they are the business's messages.
INSERT INTO outbound_messages (id, org_id, channel_id, contact_id, conversation_id,
    recipient_igsid, text, status, mid, sent_by, created_at_ms, sent_at_ms, updated_at_ms)
SELECT 'out_echo_' || m.mid, c.org_id, m.channel_id, m.contact_id, m.conversation_id, c.igsid,
    coalesce(m.text, ''), 'sent', m.mid, 'instagram_app', m.timestamp_ms, m.timestamp_ms,
    m.received_at_ms
FROM messages m JOIN contacts c ON c.id = m.contact_id
WHERE m.kind = 'echo';
DELETE FROM messages WHERE kind = 'echo';
