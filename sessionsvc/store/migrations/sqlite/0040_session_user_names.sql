-- The user as the login answer named them (issue 16): documentId, username
-- and email, each sealed by sessionsvc (secrets keyring) before it is
-- stored, and user_lookup: space-separated keyed hashes ("d:…", "u:…",
-- "e:…") of the lower-cased values, so that an exact name, email or
-- documentId finds its sessions without the names being readable here.
ALTER TABLE sessions ADD COLUMN user_document_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN username TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_email TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN user_lookup TEXT NOT NULL DEFAULT '';
