-- Every statement on the request path is an index lookup (issue 15; tests/query_plans.rs).
-- Sessions are revoked or deleted by user when an unverified registration is replaced.
CREATE INDEX sessions_user ON sessions (user_id);
-- The FastTrack claim finds the instance its dashboard user owns.
CREATE INDEX instances_owner ON instances (owner_user_id);
-- As on SQLite, where a new parent row is checked against the rows that reference it; here
-- they serve deleting an instance's rows and an account's users.
CREATE INDEX users_account ON users (account_id);
CREATE INDEX outbox_instance ON outbox (instance_id);
