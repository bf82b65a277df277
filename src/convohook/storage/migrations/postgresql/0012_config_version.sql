-- The configuration's version (storage/config_cache.py): processing keeps the channels,
-- subscribed webhooks and bots it read while this stays the same. Bumped by the triggers below,
-- in the transaction of the change, so a reader never sees a new version with old rows. Only
-- the columns processing reads bump it: a webhook's failure streak (failing_since_ms) or a
-- channel's inactivity reschedule change on the hot path and would only empty the caches.
-- A query that caches more of these tables must add its columns here.
CREATE TABLE config_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  BIGINT NOT NULL
);
INSERT INTO config_version (id, n) VALUES (1, 0);

CREATE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_version SET n = n + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER channels_config AFTER INSERT OR DELETE
    OR UPDATE OF org_id, type, handle, account_id, access_token, auto_done_after
    ON channels FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER webhooks_config AFTER INSERT OR DELETE
    OR UPDATE OF events, enabled, queue_while_disabled
    ON webhooks FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER webhook_channels_config AFTER INSERT OR DELETE OR UPDATE
    ON webhook_channels FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER bots_config AFTER INSERT OR DELETE OR UPDATE
    ON bots FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
