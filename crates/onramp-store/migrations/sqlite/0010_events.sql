-- Lifecycle events: an audit entry a webhook endpoint wants is written marked to be published
-- (1), in the transaction of its change; the worker turns it into outbox messages and clears
-- the mark in one transaction. Only marked entries are in the index, so it stays as small as
-- the backlog and costs nothing when no endpoint is configured.
ALTER TABLE audit_log ADD COLUMN publish INTEGER;
CREATE INDEX audit_unpublished ON audit_log (id) WHERE publish IS NOT NULL;
