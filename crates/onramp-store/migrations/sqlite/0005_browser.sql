-- Browser access per app: the web origins allowed to call the instance (CORS), as a JSON array,
-- and whether they may also call the server-to-server surfaces.
ALTER TABLE app_settings ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE app_settings ADD COLUMN browser_partner_calls BOOLEAN NOT NULL DEFAULT FALSE;
