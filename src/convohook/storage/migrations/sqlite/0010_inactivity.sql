-- Inactivity (DESIGN section 7): a channel may close its conversations after auto_done_after
-- seconds without a message either way. Each open conversation of such a channel keeps its
-- deadline (last_message_at_ms + auto_done_after), kept in step by every message and by every
-- change of the setting, so the closer finds what is due with one range scan of a partial index
-- however many conversations are open, and finding nothing due costs one index probe.
ALTER TABLE channels ADD COLUMN auto_done_after INTEGER
    CHECK (auto_done_after IS NULL OR auto_done_after > 0);
ALTER TABLE conversations ADD COLUMN idle_deadline_ms INTEGER;

CREATE INDEX conversations_idle_deadline ON conversations(idle_deadline_ms)
    WHERE status = 'open' AND idle_deadline_ms IS NOT NULL;
