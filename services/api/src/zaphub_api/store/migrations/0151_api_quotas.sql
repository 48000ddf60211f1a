-- Admission control (issue 15): a tenant's cap of sends not yet handed to WhatsApp, and an index that
-- holds only those sends, so counting a tenant's queue reads its queued rows and nothing else.
ALTER TABLE tenants ADD COLUMN max_queued integer;
CREATE INDEX messages_waiting ON messages (tenant_id)
    WHERE direction = 'outbound' AND status IN ('queued', 'rate_limited');
