-- A webhook disabled for failing too long (not by its owner, not by a 410) still gets a delivery
-- for every new event, which waits and goes out once it is re-enabled: no opening is missed
-- because the endpoint was down for days.
ALTER TABLE webhooks ADD COLUMN queue_while_disabled BOOLEAN NOT NULL DEFAULT FALSE;
