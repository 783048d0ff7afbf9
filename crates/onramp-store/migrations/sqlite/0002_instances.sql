-- Instances that are provisioned at run time (FastTrack, `onramp instance create`): who owns
-- them, where their own database is, why provisioning failed; roles; user profile fields.

ALTER TABLE instances ADD COLUMN owner_user_id INTEGER;     -- a user of the platform instance
ALTER TABLE instances ADD COLUMN database_ref TEXT;         -- the instance's own database
ALTER TABLE instances ADD COLUMN status_detail TEXT;        -- why provisioning failed

ALTER TABLE users ADD COLUMN first_name TEXT;
ALTER TABLE users ADD COLUMN last_name TEXT;
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN company TEXT;
ALTER TABLE users ADD COLUMN phone TEXT;

CREATE TABLE roles (
    instance_id INTEGER NOT NULL REFERENCES instances(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (instance_id, name)
);

CREATE TABLE user_roles (
    instance_id INTEGER NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users(id),
    role        TEXT NOT NULL,
    PRIMARY KEY (user_id, role),
    FOREIGN KEY (instance_id, role) REFERENCES roles(instance_id, name)
);
