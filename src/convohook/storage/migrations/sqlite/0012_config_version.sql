-- The configuration's version (storage/config_cache.py): processing keeps the channels,
-- subscribed webhooks and bots it read while this stays the same. Bumped by the triggers below,
-- in the transaction of the change. Only the columns processing reads bump it: a webhook's
-- failure streak (failing_since_ms) or a channel's inactivity reschedule change on the hot
-- path and would only empty the caches. A query that caches more of these tables must add
-- its columns here (and in the PostgreSQL migration).
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO config_version (id, n) VALUES (1, 0);

CREATE TRIGGER channels_config_insert AFTER INSERT ON channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER channels_config_delete AFTER DELETE ON channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER channels_config_update
AFTER UPDATE OF org_id, type, handle, account_id, access_token, auto_done_after ON channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER webhooks_config_insert AFTER INSERT ON webhooks
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER webhooks_config_delete AFTER DELETE ON webhooks
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER webhooks_config_update
AFTER UPDATE OF events, enabled, queue_while_disabled ON webhooks
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER webhook_channels_config_insert AFTER INSERT ON webhook_channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER webhook_channels_config_delete AFTER DELETE ON webhook_channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER webhook_channels_config_update AFTER UPDATE ON webhook_channels
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;

CREATE TRIGGER bots_config_insert AFTER INSERT ON bots
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER bots_config_delete AFTER DELETE ON bots
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER bots_config_update AFTER UPDATE ON bots
BEGIN UPDATE config_version SET n = n + 1 WHERE id = 1; END;
