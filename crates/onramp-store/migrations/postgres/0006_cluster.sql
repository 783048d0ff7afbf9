-- Settings every node must agree on, written once by the first node (e.g. the check value of
-- the secret key that seals outbox payloads).
CREATE TABLE cluster_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
