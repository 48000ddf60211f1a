"""The webhook delivery log: writes the dispatcher's attempt records to Postgres."""

import logging

import asyncpg
from nats.aio.msg import Msg
from opentelemetry import trace

from zaphub_api.store.webhooks import WebhookStore
from zaphub_contracts.webhooks import WebhookAttempt
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import decode_or_dead_letter, parse_body
from zaphub_runtime.telemetry import consumer_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_api.webhook_log")


class WebhookLog:
    def __init__(self, bus: Bus, store: WebhookStore) -> None:
        self._bus = bus
        self._store = store

    async def handle_batch(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            with consumer_span(tracer, msg.subject, msg.headers, {"zaphub.consumer": "webhook-attempts"}):
                await self._handle(msg)

    async def _handle(self, msg: Msg) -> None:
        attempt = await decode_or_dead_letter(self._bus, msg, parse_body(WebhookAttempt), "webhook-log")
        if attempt is None:
            return
        try:
            await self._store.record_attempt(attempt)
        except asyncpg.ForeignKeyViolationError:
            # The webhook was deleted while this attempt was on its way: nothing left to record it on.
            log.info(
                "attempt of a deleted webhook dropped",
                extra={"fields": {"webhook_id": str(attempt.webhook_id)}},
            )
            await msg.ack()
            return
        except (asyncpg.PostgresError, OSError):
            log.warning("webhook attempt not recorded; will retry", exc_info=True)
            await msg.nak(delay=1.0)
            return
        await msg.ack()
