"""The sent log against a real NATS whose bucket does not answer (its stream between two leaders): a
record is written within about a second of the bucket answering again, not after the client's own
10-s timeout; repeats of the send are answered from memory meanwhile; and a request cancelled while
its record waits (its session's lease lost, its subscription gone) does not take the record with it."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from nats.aio.subscription import Subscription
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from zaphub_contracts.failures import FailureReason, is_transient
from zaphub_contracts.sessions import HandedOver
from zaphub_runtime.bus import Bus
from zaphub_session_host.handlers import failure
from zaphub_session_host.sent_log import ATTEMPT_TIMEOUT, RETRY_EVERY, SentLog, SentLogUnavailable


@dataclass
class SilentBucket:
    """A bucket whose stream is gone and whose subject takes puts without answering them, until
    `answer()` brings the stream back."""

    bus: Bus
    name: str
    kv: KeyValue
    silent: Subscription | None = field(default=None)

    async def answer(self) -> None:
        assert self.silent is not None
        await self.silent.unsubscribe()
        await self.bus.js.create_key_value(bucket=self.name)

    async def silence(self) -> None:
        await self.bus.js.delete_key_value(self.name)
        self.silent = await self.bus.nc.subscribe(f"$KV.{self.name}.>")

    async def stored(self, handed: HandedOver) -> HandedOver | None:
        try:
            entry = await self.kv.get(str(handed.message_id))
        except KeyNotFoundError:
            return None
        return HandedOver.model_validate_json(entry.value) if entry.value else None


@pytest.fixture
async def bucket(nats_url: str) -> AsyncIterator[SilentBucket]:
    bus = await Bus.connect(nats_url, name="test-sent-log", source="/test")
    name = f"sent_{uuid.uuid4().hex[:8]}"
    silent = SilentBucket(bus, name, await bus.js.create_key_value(bucket=name))
    await silent.silence()
    yield silent
    await bus.js.delete_key_value(name)
    await bus.nc.close()


def handed_over() -> HandedOver:
    return HandedOver(
        message_id=uuid.uuid4(),
        whatsapp_id="3EB0TEST",
        session_id=uuid.uuid4(),
        sent_at=datetime.now(UTC),
        host_id="h1",
    )


async def test_a_record_lands_soon_after_a_silent_bucket_answers_again(bucket: SilentBucket) -> None:
    log = SentLog(bucket.kv)
    handed = handed_over()
    writing = log.write(handed)
    await asyncio.sleep(1.5)
    assert not writing.done()
    assert await log.get(handed.message_id) == handed  # a repeat is a duplicate, from memory
    await bucket.answer()
    back = time.monotonic()
    await asyncio.wait_for(writing, 10)
    assert time.monotonic() - back < ATTEMPT_TIMEOUT + RETRY_EVERY + 1.0
    assert await bucket.stored(handed) == handed


async def test_a_record_is_written_after_the_request_waiting_for_it_is_cancelled(
    bucket: SilentBucket,
) -> None:
    """As a host request is when the session's lease is lost: the hand-over happened, so its record
    must still reach the bucket for the session's next owner."""
    log = SentLog(bucket.kv)
    handed = handed_over()

    async def request() -> None:
        await log.outliving(asyncio.sleep(0.1))  # the hand-over
        await log.write(handed)

    serving = asyncio.create_task(request())
    await asyncio.sleep(0.5)
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    await bucket.answer()
    deadline = time.monotonic() + 5
    while await bucket.stored(handed) is None:
        assert time.monotonic() < deadline, "the record of a cancelled request was never written"
        await asyncio.sleep(0.1)
    await log.close(1.0)


async def test_a_lookup_the_bucket_does_not_answer_is_a_named_transient_failure(nats_url: str) -> None:
    """Not an unexpected error with a traceback: the send waits and is asked for again. (A deleted
    stream answers a lookup "not found", so silence here is a JetStream API nobody answers.)"""
    bus = await Bus.connect(nats_url, name="test-sent-log-lookup", source="/test")
    silent = await bus.nc.subscribe("$SILENT.API.>")
    name = f"sent_{uuid.uuid4().hex[:8]}"
    kv = KeyValue(name, f"KV_{name}", f"$KV.{name}.", bus.nc.jetstream(prefix="$SILENT.API"), direct=False)
    log = SentLog(kv)
    began = time.monotonic()
    with pytest.raises(SentLogUnavailable) as raised:
        await log.get(uuid.uuid4())
    assert time.monotonic() - began < ATTEMPT_TIMEOUT + 1.0
    error = failure(raised.value)
    assert error.reason == FailureReason.TIMEOUT and is_transient(error.reason)
    assert "sent log" in error.detail
    await silent.unsubscribe()
    await bus.nc.close()
