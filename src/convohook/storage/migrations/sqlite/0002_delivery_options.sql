-- Per-webhook delivery options (issue 4): payload format, custom headers, authorization,
-- timeout, endpoint health; and previous secrets kept for a grace period after rotation.

ALTER TABLE webhooks ADD COLUMN format TEXT NOT NULL DEFAULT 'doubletick'
    CHECK (format IN ('doubletick', 'standard'));
ALTER TABLE webhooks ADD COLUMN headers TEXT NOT NULL DEFAULT '{}';
ALTER TABLE webhooks ADD COLUMN auth_type TEXT CHECK (auth_type IN ('basic', 'bearer'));
ALTER TABLE webhooks ADD COLUMN auth_value TEXT;
ALTER TABLE webhooks ADD COLUMN timeout_s REAL;
ALTER TABLE webhooks ADD COLUMN failing_since_ms INTEGER;

CREATE TABLE webhook_secrets (
    id            TEXT PRIMARY KEY,
    webhook_id    TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    secret        TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX webhook_secrets_webhook ON webhook_secrets(webhook_id, expires_at_ms);
