"""Accepting sends under load: concurrent requests are stored in one statement and their commands
published in the order of their per-session seq (group commit).

Publishing a batch in seq order matters: a command that reaches the dispatcher before its session's
previous one has to wait and be redelivered, which costs a cursor read, a NAK and a second delivery.
"""

from zaphub_api.store.messages import Accepted, MessageStore, NewMessage
from zaphub_api.workers.outbox import Outbox
from zaphub_runtime.group_commit import GroupCommit


class AcceptQueue:
    def __init__(self, messages: MessageStore, outbox: Outbox, max_batch: int = 256) -> None:
        self._messages = messages
        self._outbox = outbox
        # Two batches in flight: one is written while the next one fills.
        self._batches: GroupCommit[NewMessage, Accepted] = GroupCommit(
            self._flush, max_batch=max_batch, concurrency=2
        )

    async def accept(self, message: NewMessage) -> Accepted:
        """Store the message as queued and publish its send command (or leave that to the sweeper)."""
        return await self._batches.submit(message)

    async def drain(self) -> None:
        """Until the batches in flight are stored and published (on shutdown, before the bus closes)."""
        await self._batches.wait_idle()

    async def _flush(self, batch: list[NewMessage]) -> list[Accepted | Exception]:
        results = await self._messages.accept_many(batch)
        fresh = [
            (i, message.tenant_id, result)
            for i, (message, result) in enumerate(zip(batch, results, strict=True))
            if isinstance(result, Accepted) and not result.replayed
        ]
        fresh.sort(key=lambda item: item[2].seq)
        refusals = await self._outbox.publish_sends([(tenant_id, a) for _, tenant_id, a in fresh])
        # A full command stream answers 503 (the message waits in the outbox, in its session's order).
        out: list[Accepted | Exception] = list(results)
        for (i, _, _), refusal in zip(fresh, refusals, strict=True):
            if refusal is not None:
                out[i] = refusal
        return out
