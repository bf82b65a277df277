-- Bot Studio journeys (DESIGN section 7): a bot is a trigger, conditions and ordered actions.
-- Capture bots ("On Webhook", trigger 'webhook') keep their token and take neither.
ALTER TABLE bots ADD COLUMN conditions TEXT NOT NULL DEFAULT '{}';  -- JSON object
ALTER TABLE bots ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';     -- JSON list, in order
ALTER TABLE bots ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE bots ADD COLUMN updated_at_ms INTEGER NOT NULL DEFAULT 0;
UPDATE bots SET updated_at_ms = created_at_ms;
-- The enabled bots of an org, read by every transaction that writes events or customer messages.
CREATE INDEX bots_enabled ON bots(org_id, id) WHERE enabled = TRUE;

-- A bot's run: decided in the transaction that wrote its triggering event (or message), so a
-- crash neither loses nor repeats it, and carried out, conditions and actions, in one later
-- transaction with its effects (a reply queued, an assignment, tags, a close). `trigger_key`
-- names the triggering event or message: one run per bot and trigger, whoever writes it.
-- `seq` is the order runs were decided in, which is the order they run in: the bots of one
-- event oldest first, and an event's runs before those of a later one.
CREATE TABLE bot_runs (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    org_id          TEXT NOT NULL,
    bot_id          TEXT NOT NULL REFERENCES bots(id) ON DELETE CASCADE,
    trigger         TEXT NOT NULL,
    trigger_key     TEXT NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    contact_id      TEXT NOT NULL,
    -- What the trigger knew, kept with the run: the message's text and whether it came from an
    -- ad or an ig.me link, and how the conversation opened.
    text            TEXT,
    referral        BOOLEAN NOT NULL DEFAULT FALSE,
    reason          TEXT,
    happened_at_ms  INTEGER NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'done', 'skipped', 'failed')),
    detail          TEXT,            -- why a run was skipped (a condition) or failed
    outcomes        TEXT,            -- JSON list: each action's type, status and detail
    created_at_ms   INTEGER NOT NULL,
    finished_at_ms  INTEGER,
    UNIQUE (bot_id, trigger_key)
);
-- The runner's claim: pending runs, oldest first.
CREATE INDEX bot_runs_pending ON bot_runs(seq) WHERE status = 'pending';
-- A bot's page: its runs, newest first.
CREATE INDEX bot_runs_bot ON bot_runs(bot_id, seq);
-- Runs of a conversation, in order: a run waits for the earlier ones of its conversation.
CREATE INDEX bot_runs_conversation ON bot_runs(conversation_id, seq) WHERE status = 'pending';
