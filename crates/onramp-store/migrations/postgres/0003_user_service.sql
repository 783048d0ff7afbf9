-- DreamFactory's "user service config" per instance, and application API keys (stored hashed).

CREATE TABLE instance_settings (
    instance_id             BIGINT PRIMARY KEY REFERENCES instances(id),
    open_registration       BOOLEAN NOT NULL DEFAULT FALSE,
    open_reg_role           TEXT,
    open_reg_email_service  TEXT,
    open_reg_email_template TEXT,
    default_language        TEXT,             -- mail language when the reader's is not shipped
    allow_keyless           BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    app_id      TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix      TEXT NOT NULL,
    label       TEXT NOT NULL,
    source      TEXT NOT NULL,            -- config | cli
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    FOREIGN KEY (instance_id, app_id) REFERENCES apps(instance_id, id)
);
CREATE INDEX api_keys_app ON api_keys(instance_id, app_id);
