-- Who sent an inbound message, as WhatsApp gives it (issue 17): the sender's LID beside its phone JID,
-- its push name, and in groups the participant; and whether a message came from the history sync
-- after pairing (imported: never a message.received, never a webhook).
ALTER TABLE messages
    ADD COLUMN sender_lid      text,
    ADD COLUMN push_name       text,
    ADD COLUMN participant     text,
    ADD COLUMN participant_lid text,
    ADD COLUMN imported        boolean NOT NULL DEFAULT false;
