-- Tenants, hashed API keys, sessions (desired and observed state) and messages with status history.
CREATE TABLE tenants (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    rate_per_minute integer,
    rate_per_hour   integer,
    rate_per_day    integer,
    max_sessions    integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL DEFAULT 'default',
    prefix       text NOT NULL,
    key_hash     bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id);

CREATE TABLE sessions (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name          text NOT NULL,
    status        text NOT NULL,
    status_reason text,
    status_at     timestamptz NOT NULL DEFAULT now(),
    jid           text,
    lid           text,
    push_name     text,
    host_id       text,
    qr            text,
    qr_expires_at timestamptz,
    msg_seq       bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_tenant ON sessions (tenant_id, created_at);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    tenant_id       uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    session_id      uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    direction       text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    seq             bigint,
    chat            text NOT NULL,
    sender          text,
    type            text NOT NULL,
    content         jsonb NOT NULL,
    status          text NOT NULL,
    whatsapp_id     text,
    failure_reason  text,
    failure_detail  text,
    idempotency_key text,
    published_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX messages_idempotency ON messages (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX messages_session ON messages (session_id, created_at);
CREATE INDEX messages_whatsapp_id ON messages (whatsapp_id) WHERE whatsapp_id IS NOT NULL;
-- The outbox sweeper looks only at accepted messages whose command was not yet published.
CREATE INDEX messages_unpublished ON messages (created_at) WHERE published_at IS NULL AND direction = 'outbound';

CREATE TABLE message_history (
    id         bigserial PRIMARY KEY,
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    event_id   uuid UNIQUE,
    status     text NOT NULL,
    at         timestamptz NOT NULL,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX message_history_message ON message_history (message_id, at);
