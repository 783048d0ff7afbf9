-- Partner signup and contract accounts: per-app surface settings, dialogportal contracts, the
-- fields an account was created with, unique contract values, external keys.

ALTER TABLE users ADD COLUMN profile TEXT;                 -- contract fields (JSON); never a password

CREATE TABLE app_settings (
    instance_id      BIGINT NOT NULL,
    app_id           TEXT NOT NULL,
    default_contract TEXT,
    ext_key_type     BIGINT,
    PRIMARY KEY (instance_id, app_id),
    FOREIGN KEY (instance_id, app_id) REFERENCES apps(instance_id, id)
);

CREATE TABLE contracts (
    instance_id BIGINT NOT NULL,
    app_id      TEXT NOT NULL,
    id          TEXT NOT NULL,
    fields      TEXT NOT NULL,                            -- JSON: ordered field specs
    PRIMARY KEY (instance_id, app_id, id),
    FOREIGN KEY (instance_id, app_id) REFERENCES apps(instance_id, id)
);

CREATE TABLE unique_values (
    instance_id BIGINT NOT NULL,
    field       TEXT NOT NULL,
    value       TEXT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (instance_id, field, value)
);
CREATE INDEX unique_values_user ON unique_values(user_id);

CREATE TABLE ext_keys (
    instance_id BIGINT NOT NULL,
    key_type    BIGINT NOT NULL,
    ext_key     TEXT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users(id),
    PRIMARY KEY (instance_id, key_type, ext_key),
    UNIQUE (user_id, key_type)
);
