-- Per-webhook rate and concurrency limits, and optional strict per-conversation ordering.

ALTER TABLE webhooks ADD COLUMN rate_limit_per_s REAL;
ALTER TABLE webhooks ADD COLUMN max_concurrency INTEGER;
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none'
    CHECK (ordering IN ('none', 'fifo'));

CREATE INDEX events_conversation ON events(conversation_id);
CREATE INDEX deliveries_open_by_webhook ON deliveries(webhook_id, event_id)
    WHERE status IN ('pending', 'sending');
