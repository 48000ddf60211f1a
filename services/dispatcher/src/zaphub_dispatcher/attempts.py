"""Failed-attempt counts per message, kept in KV so that a restart or another replica continues them.

Rate-limit waits and order waits are not attempts; only transient send failures count.
"""

import contextlib
from uuid import UUID

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue


class Attempts:
    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket

    @staticmethod
    def _key(message_id: UUID) -> str:
        return f"attempts.{message_id}"

    async def failed(self, message_id: UUID) -> int:
        """Count one more failed attempt; returns the total."""
        try:
            entry = await self._bucket.get(self._key(message_id))
            count = int(entry.value or b"0") + 1
        except KeyNotFoundError:
            count = 1
        await self._bucket.put(self._key(message_id), str(count).encode())
        return count

    async def count(self, message_id: UUID) -> int:
        try:
            entry = await self._bucket.get(self._key(message_id))
        except KeyNotFoundError:
            return 0
        return int(entry.value or b"0")

    async def clear(self, message_id: UUID) -> None:
        with contextlib.suppress(KeyNotFoundError):
            await self._bucket.purge(self._key(message_id))
