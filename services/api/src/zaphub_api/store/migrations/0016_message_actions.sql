-- Edits and revokes (issue 16): when a message was last edited or revoked; the history keeps each.
ALTER TABLE messages ADD COLUMN edited_at timestamptz;
ALTER TABLE messages ADD COLUMN revoked_at timestamptz;
