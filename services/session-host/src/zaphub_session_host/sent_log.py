"""Idempotency of sends: `HandedOver` records in KV `zaphub_sent`, keyed by ZapHub message id.

A record the bucket cannot take at once (its stream between two leaders after a NATS node died, or
NATS unreachable) is written again until it is, and kept in memory meanwhile: a repeat of that send
(the dispatcher's reply was lost, it asks again) is answered as a duplicate instead of handed to
WhatsApp a second time, by this host from memory, by the next owner of the session from the bucket.
The session's sends wait meanwhile: none may go out that could not be recorded.
"""

import asyncio
import time
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from zaphub_contracts.sessions import HandedOver
from zaphub_runtime.codec import encode

RETRY_FOR = 60.0  # seconds: several JetStream leader elections (each takes up to about 10 s)
RETRY_EVERY = 0.25
# A put sent while the bucket has no leader gets no answer: waiting out the client's own timeout
# (10 s) would leave the record unwritten that long after the election ends, long enough for the
# session's next owner (the lease lost meanwhile) to find no record and hand the message over again.
ATTEMPT_TIMEOUT = 1.0


class SentLog:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self._unwritten: dict[UUID, HandedOver] = {}

    async def get(self, message_id: UUID) -> HandedOver | None:
        if (handed := self._unwritten.get(message_id)) is not None:
            return handed
        try:
            entry = await self.kv.get(str(message_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return HandedOver.model_validate_json(entry.value)

    async def record(self, handed: HandedOver) -> None:
        """Write the record; raises when the bucket still cannot take it after `RETRY_FOR` seconds
        (this host goes on answering repeats of the send from memory)."""
        self._unwritten[handed.message_id] = handed
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                await asyncio.wait_for(self.kv.put(str(handed.message_id), encode(handed)), ATTEMPT_TIMEOUT)
            except (NatsError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(RETRY_EVERY)
                continue
            self._unwritten.pop(handed.message_id, None)
            return
