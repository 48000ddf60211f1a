-- Webhooks of a tenant, and the log of their deliveries (one row per delivery, one per attempt).
CREATE TABLE webhooks (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    url         text NOT NULL,
    events      text[] NOT NULL,
    secret      text NOT NULL,
    description text,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_tenant ON webhooks (tenant_id, created_at, id);

CREATE TABLE webhook_deliveries (
    id                 uuid PRIMARY KEY,
    webhook_id         uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    tenant_id          uuid NOT NULL,
    session_id         uuid NOT NULL,
    event_id           uuid NOT NULL,
    event_type         text NOT NULL,
    event_seq          bigint,
    status             text NOT NULL,
    attempts           integer NOT NULL DEFAULT 0,
    last_response_code integer,
    last_error         text,
    last_attempt_at    timestamptz,
    next_attempt_at    timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at DESC, id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    status        text NOT NULL,
    response_code integer,
    error         text,
    duration_ms   integer NOT NULL DEFAULT 0,
    at            timestamptz NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
