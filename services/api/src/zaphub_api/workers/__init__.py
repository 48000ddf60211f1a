"""The API's background workers: the projector and the webhook delivery log (JetStream consumers that
write PostgreSQL), and the outbox sweeper. The API runs them in-process unless `projector` is off."""
