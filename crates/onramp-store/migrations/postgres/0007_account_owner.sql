-- A contract account belongs to the app that created it; other apps of the instance read it
-- only when the operator lets them (app_settings.reads_accounts_of, a JSON array of app ids).
ALTER TABLE users ADD COLUMN app_id TEXT;
ALTER TABLE app_settings ADD COLUMN reads_accounts_of TEXT NOT NULL DEFAULT '[]';
-- Accounts made before owners were recorded: an instance with one app owns them all.
UPDATE users SET app_id = (SELECT a.id FROM apps a WHERE a.instance_id = users.instance_id)
 WHERE profile IS NOT NULL
   AND (SELECT COUNT(*) FROM apps a WHERE a.instance_id = users.instance_id) = 1;
