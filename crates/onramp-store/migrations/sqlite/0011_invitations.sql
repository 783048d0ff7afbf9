-- Invitations: an operator or an app invites an address; the mailed link (its secret stored
-- hashed) opens the hosted page that creates the user, active at once. An instance or app
-- with invite-only signup refuses every other signup of an address without a live one.
CREATE TABLE invitations (
    id              INTEGER PRIMARY KEY,
    instance_id     INTEGER NOT NULL REFERENCES instances(id),
    public_id       TEXT NOT NULL,           -- inv_…
    app_id          TEXT NOT NULL,
    email           TEXT NOT NULL,
    email_canonical TEXT NOT NULL,
    role            TEXT,
    secret_hash     TEXT NOT NULL,
    invited_by      TEXT NOT NULL,           -- admin:tok_…, cli, app:app_…
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    accepted_at     INTEGER,
    revoked_at      INTEGER,
    user_id         INTEGER REFERENCES users(id)
);
CREATE UNIQUE INDEX invitations_public_id ON invitations (instance_id, public_id);
CREATE UNIQUE INDEX invitations_secret ON invitations (secret_hash);
CREATE INDEX invitations_email ON invitations (instance_id, email_canonical);
-- SQLite checks a deleted user's children by this column.
CREATE INDEX invitations_user ON invitations (user_id);
