-- Acting on the opening, part 1 (DESIGN section 7): agents, round robin, assignment events and
-- the profile fields bots will read.

-- An org's users are its agents. A user may have no password (password_hash ''): an agent
-- others assign conversations to, who never signs in to the UI. `available` decides only whom
-- round robin picks: a person may assign any agent.
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN available BOOLEAN NOT NULL DEFAULT TRUE;
UPDATE users SET name = email;
CREATE INDEX users_org ON users(org_id, id);

-- Round robin's turn, per org: the agent who had the last one. Its row is locked while a turn
-- is taken, so workers in other processes (and after a restart) continue the same rotation.
CREATE TABLE round_robin_cursors (
    org_id        TEXT PRIMARY KEY REFERENCES orgs(id) ON DELETE CASCADE,
    last_agent_id TEXT
);

-- What an event says beyond the DoubleTick fields, as JSON, frozen when it happened (for
-- conversation.assigned: the assignee, the previous one, who assigned): a payload built later,
-- once the customer's profile is known, says the same.
ALTER TABLE events ADD COLUMN details TEXT;

-- The User Profile API's fields for bots' conditions; NULL when Instagram did not share them.
ALTER TABLE contacts ADD COLUMN follower_count INTEGER;
ALTER TABLE contacts ADD COLUMN is_user_follow_business BOOLEAN;
ALTER TABLE contacts ADD COLUMN is_verified_user BOOLEAN;
