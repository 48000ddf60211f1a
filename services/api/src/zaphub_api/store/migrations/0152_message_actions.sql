-- Edits and revokes (issue 16): when a message was last edited or revoked; the history keeps each.
-- Numbered after 0151 so existing databases apply it in the same order as fresh ones; IF NOT EXISTS
-- because a database of the unmerged w2-actions branch recorded the same change as version 16.
ALTER TABLE messages ADD COLUMN IF NOT EXISTS edited_at timestamptz;
ALTER TABLE messages ADD COLUMN IF NOT EXISTS revoked_at timestamptz;
