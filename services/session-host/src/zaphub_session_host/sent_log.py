"""Idempotency of sends: `HandedOver` records in KV `zaphub_sent`, keyed by ZapHub message id.

A record the bucket cannot take at once (its stream between two leaders after a NATS node died, or
NATS unreachable) is written again until it is, and kept in memory meanwhile: a repeat of that send
(the dispatcher's reply was lost, it asks again) is answered as a duplicate instead of handed to
WhatsApp a second time, by this host from memory, by the next owner of the session from the bucket.
The session's sends wait meanwhile: none may go out that could not be recorded.

A hand-over and the writing of its record run in a task of their own, which outlives the request that
started them: a host request is served inside its subscription, and the subscription goes (its task
cancelled) the moment the session's lease is lost, which a NATS election can cause while the bucket
is not answering. Cancelled with the request, the record would never be written, and the session's
next owner would find none and hand the message over again.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from zaphub_contracts.sessions import HandedOver
from zaphub_runtime.codec import encode

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_FOR = 60.0  # seconds: several JetStream leader elections (each takes up to about 10 s)
RETRY_EVERY = 0.25
# A put (or get) sent while the bucket has no leader gets no answer: waiting out the client's timeout
# (10 s) would leave the record unwritten that long after the election ends, long enough for the
# session's next owner (the lease lost meanwhile) to find no record and hand the message over again.
ATTEMPT_TIMEOUT = 1.0


class SentLogUnavailable(Exception):
    """The bucket did not answer in time: a lookup that cannot say whether a message went out, or a
    record still unwritten after `RETRY_FOR`. Transient: the dispatcher asks again later."""


class SentLog:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv
        self._unwritten: dict[UUID, HandedOver] = {}
        self._running: set[asyncio.Future[Any]] = set()

    def _keep(self, work: Awaitable[T]) -> "asyncio.Future[T]":
        task = asyncio.ensure_future(work)
        self._running.add(task)  # the loop holds tasks weakly
        task.add_done_callback(self._running.discard)
        return task

    async def outliving(self, work: Awaitable[T]) -> T:
        """`work` in a task of its own: a caller cancelled meanwhile leaves it to finish."""
        return await asyncio.shield(self._keep(work))

    def write(self, handed: HandedOver) -> "asyncio.Future[None]":
        """Remember the record and start writing it, before this returns; await the result to know it
        is written (it raises as `_record` does). Called right after the hand-over, with no await
        between the two."""
        self._unwritten[handed.message_id] = handed
        return asyncio.shield(self._keep(self._record(handed)))

    async def close(self, timeout: float) -> None:
        """At shutdown: let the hand-overs and records under way finish, for at most `timeout`."""
        if self._running:
            _, left = await asyncio.wait(set(self._running), timeout=timeout)
            if left:
                log.error(
                    "hand-over records left unwritten at shutdown", extra={"fields": {"left": len(left)}}
                )

    async def get(self, message_id: UUID) -> HandedOver | None:
        if (handed := self._unwritten.get(message_id)) is not None:
            return handed
        try:
            # Short, as the writes are: a run waiting out the client's 10 s holds the session's sends.
            entry = await asyncio.wait_for(self.kv.get(str(message_id)), ATTEMPT_TIMEOUT)
        except KeyNotFoundError:
            return None
        except (NatsError, TimeoutError) as exc:
            raise SentLogUnavailable(f"the sent log did not answer a lookup: {exc!r}") from exc
        if not entry.value:
            return None
        return HandedOver.model_validate_json(entry.value)

    async def _record(self, handed: HandedOver) -> None:
        """Write the record; raises SentLogUnavailable when the bucket still cannot take it after
        `RETRY_FOR` seconds (this host goes on answering repeats of the send from memory)."""
        deadline = time.monotonic() + RETRY_FOR
        while True:
            try:
                await asyncio.wait_for(self.kv.put(str(handed.message_id), encode(handed)), ATTEMPT_TIMEOUT)
            except (NatsError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    log.error(
                        "hand-over record not written",
                        extra={"fields": {"message_id": str(handed.message_id), "for_s": RETRY_FOR}},
                    )
                    raise SentLogUnavailable(f"the sent log did not take a record: {exc!r}") from exc
                await asyncio.sleep(RETRY_EVERY)
                continue
            self._unwritten.pop(handed.message_id, None)
            return
