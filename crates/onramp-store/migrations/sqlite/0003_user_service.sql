-- DreamFactory's "user service config" per instance, and application API keys (stored hashed).

CREATE TABLE instance_settings (
    instance_id             INTEGER PRIMARY KEY REFERENCES instances(id),
    open_registration       INTEGER NOT NULL DEFAULT 0,
    open_reg_role           TEXT,
    open_reg_email_service  TEXT,
    open_reg_email_template TEXT,
    default_language        TEXT,             -- mail language when the reader's is not shipped
    allow_keyless           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances(id),
    app_id      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,            -- config | cli
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    FOREIGN KEY (instance_id, app_id) REFERENCES apps(instance_id, id)
);
CREATE INDEX api_keys_app ON api_keys(instance_id, app_id);
