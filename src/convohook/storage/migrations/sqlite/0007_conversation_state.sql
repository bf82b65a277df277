-- Acting on the opening (DESIGN section 7): who a conversation is assigned to, its tags, why it
-- was closed (manual, inactivity, bot), and when a message last went either way: Meta's time of
-- the customer's, the time a reply was sent. The inactivity rule and the Inbox read the last.
ALTER TABLE conversations ADD COLUMN assignee_id TEXT REFERENCES users(id) ON DELETE SET NULL;
ALTER TABLE conversations ADD COLUMN closed_reason TEXT
    CHECK (closed_reason IN ('manual', 'inactivity', 'bot'));
ALTER TABLE conversations ADD COLUMN last_message_at_ms INTEGER;

-- Every conversation closed so far was closed by a person.
UPDATE conversations SET closed_reason = 'manual' WHERE status = 'done';
UPDATE conversations SET last_message_at_ms = coalesce(
    (SELECT max(m.timestamp_ms) FROM messages m WHERE m.conversation_id = conversations.id),
    opened_at_ms);

-- The Inbox's "Mine" and "Unassigned".
CREATE INDEX conversations_assignee ON conversations(org_id, assignee_id, id);

CREATE TABLE conversation_tags (
    org_id          TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, tag)
);
-- Conversations by tag, within an org.
CREATE INDEX conversation_tags_tag ON conversation_tags(org_id, tag, conversation_id);
