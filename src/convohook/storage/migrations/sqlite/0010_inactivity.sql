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

-- After a change of the setting, the open conversations' deadlines are recomputed by the closer
-- in bounded batches, in contact id order (a million in one statement would hold SQLite's write
-- lock, or PostgreSQL's rows, for seconds): the contact id up to which it has done so, '' for
-- none yet, NULL when every deadline is the setting's.
ALTER TABLE channels ADD COLUMN idle_rescheduled_to TEXT;
CREATE INDEX channels_idle_rescheduling ON channels(id) WHERE idle_rescheduled_to IS NOT NULL;
