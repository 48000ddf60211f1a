-- Chats of each session, kept by the projector from message.sent and message.received (issue 17).
CREATE TABLE chats (
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id      uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    chat            text NOT NULL,
    name            text,
    is_group        boolean NOT NULL DEFAULT false,
    last_message_id uuid,
    last_direction  text,
    last_type       text,
    last_preview    text,
    last_at         timestamptz NOT NULL,
    unread_count    integer NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, chat)
);
-- The chat list, newest activity first, by keyset (last_at, chat).
CREATE INDEX chats_recent ON chats (session_id, last_at DESC, chat DESC);
-- A chat's history, both directions, newest first, by keyset (created_at, id).
CREATE INDEX messages_chat ON messages (session_id, chat, created_at DESC, id DESC);

-- Received (and sent) media in the media store, once the owning host stored it (message.media_stored).
ALTER TABLE messages ADD COLUMN media jsonb, ADD COLUMN media_stored_at timestamptz;
