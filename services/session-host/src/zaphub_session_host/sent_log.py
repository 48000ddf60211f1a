"""Idempotency of sends: `HandedOver` records in KV `zaphub_sent`, keyed by ZapHub message id."""

from uuid import UUID

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from zaphub_contracts.sessions import HandedOver
from zaphub_runtime.codec import encode


class SentLog:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, message_id: UUID) -> HandedOver | None:
        try:
            entry = await self.kv.get(str(message_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return HandedOver.model_validate_json(entry.value)

    async def record(self, handed: HandedOver) -> None:
        await self.kv.put(str(handed.message_id), encode(handed))
