-- onramp schema, PostgreSQL. Times are Unix seconds (UTC). Every row belongs to one instance.

CREATE TABLE instances (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    status      TEXT NOT NULL DEFAULT 'active',
    created_at  BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    kid         TEXT NOT NULL,
    pkcs8_der   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (instance_id, kid)
);

CREATE TABLE apps (
    instance_id    BIGINT NOT NULL REFERENCES instances(id),
    id             TEXT NOT NULL,
    name           TEXT NOT NULL,
    signup_url     TEXT NOT NULL,
    activation_token_in_response BOOLEAN NOT NULL,
    schema_version TEXT NOT NULL,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE domains (
    instance_id  BIGINT NOT NULL,
    id           TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    position     BIGINT NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    help         TEXT NOT NULL,
    allow_signup BOOLEAN NOT NULL,
    PRIMARY KEY (instance_id, id),
    FOREIGN KEY (instance_id, app_id) REFERENCES apps(instance_id, id) ON DELETE CASCADE
);

CREATE TABLE accounts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    public_id   TEXT NOT NULL,
    title       TEXT NOT NULL,
    country     TEXT NOT NULL,
    app_id      TEXT NOT NULL,
    domain_id   TEXT NOT NULL,
    version_id  TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX accounts_public_id ON accounts(instance_id, public_id);

CREATE TABLE users (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id        BIGINT NOT NULL REFERENCES instances(id),
    public_id          TEXT NOT NULL,
    uuid               TEXT NOT NULL,
    account_id         BIGINT REFERENCES accounts(id),
    email              TEXT NOT NULL,
    email_canonical    TEXT NOT NULL,
    username           TEXT,
    username_canonical TEXT,
    name               TEXT NOT NULL,
    language           TEXT NOT NULL,
    status             TEXT NOT NULL,
    password_hash      TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    activated_at       BIGINT
);
CREATE UNIQUE INDEX users_email_canonical ON users(instance_id, email_canonical);
CREATE UNIQUE INDEX users_username_canonical ON users(instance_id, username_canonical);
CREATE UNIQUE INDEX users_public_id ON users(instance_id, public_id);
CREATE UNIQUE INDEX users_uuid ON users(uuid);

CREATE TABLE verifications (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances(id),
    user_id     BIGINT NOT NULL REFERENCES users(id),
    purpose     TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    consumed_at BIGINT,
    voided_at   BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX verifications_secret ON verifications(instance_id, purpose, secret_hash);
CREATE INDEX verifications_user ON verifications(user_id, purpose);

CREATE TABLE sessions (
    instance_id    BIGINT NOT NULL REFERENCES instances(id),
    id             TEXT NOT NULL,
    user_id        BIGINT NOT NULL REFERENCES users(id),
    user_public_id TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    PRIMARY KEY (instance_id, id)
);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id     BIGINT NOT NULL REFERENCES instances(id),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    payload         BYTEA,           -- sealed; NULL once delivered
    status          TEXT NOT NULL DEFAULT 'pending',  -- pending | delivered | dead
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);

CREATE TABLE rate_limits (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    hits         BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits(window_start);
