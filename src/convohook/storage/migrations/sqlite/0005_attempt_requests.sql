-- What each attempt sent (issue 5: a webhook's page shows every attempt's request): the headers
-- as sent, Authorization masked; the body only where it differs from the delivery's payload
-- (the extended format's envelope), NULL otherwise.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
ALTER TABLE attempts ADD COLUMN request_body TEXT;
