-- The operator's control plane (issue 13): admin tokens (stored hashed, global or scoped to one
-- instance, read-only or read-write) and the audit log, written in the same transaction as the
-- change it records.

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    label       TEXT NOT NULL,
    instance_id BIGINT REFERENCES instances(id),   -- NULL: every instance
    read_only   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- SQLite checks a new instance against the rows that reference it.
CREATE INDEX admin_tokens_instance ON admin_tokens (instance_id);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id BIGINT,                -- NULL: not about one instance (an admin token, the outbox)
    type        TEXT NOT NULL,         -- user.disabled, login.failed, …
    actor       TEXT NOT NULL,         -- admin:tok_…, cli, user:usr_…, anonymous, system
    target      TEXT,                  -- what it is about: a user's public id, a key id, …
    user_id     TEXT,                  -- the user it is about (public id), for their trail
    client      TEXT,                  -- the client's address
    detail      TEXT NOT NULL,         -- JSON object; never a secret
    created_at  BIGINT NOT NULL
);
CREATE INDEX audit_instance ON audit_log (instance_id, id);
CREATE INDEX audit_user ON audit_log (instance_id, user_id, id);
-- Two indexes only: each is written with every signup, activation and login (on SQLite, in
-- the single writer's transaction). A listing by type walks the newest entries; retention
-- deletes from the oldest id.

-- The admin API finds users by phone.
CREATE INDEX users_phone ON users (instance_id, phone);

-- What an import kept of a user from the system it came from (a JSON object).
ALTER TABLE users ADD COLUMN metadata TEXT;
