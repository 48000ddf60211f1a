"""The sent log against a real NATS: a record whose bucket does not answer (its stream between two
leaders) is written within about a second of the bucket answering again, not after the client's own
10-s timeout, and repeats of the send are answered from memory meanwhile."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

from zaphub_contracts.sessions import HandedOver
from zaphub_runtime.bus import Bus
from zaphub_session_host.sent_log import ATTEMPT_TIMEOUT, RETRY_EVERY, SentLog


async def test_a_record_lands_soon_after_a_silent_bucket_answers_again(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, name="test-sent-log", source="/test")
    bucket = f"sent_{uuid.uuid4().hex[:8]}"
    kv = await bus.js.create_key_value(bucket=bucket)
    await bus.js.delete_key_value(bucket)
    # What a leaderless stream does to a put: takes it and never answers.
    silent = await bus.nc.subscribe(f"$KV.{bucket}.>")
    log = SentLog(kv)
    handed = HandedOver(
        message_id=uuid.uuid4(),
        whatsapp_id="3EB0TEST",
        session_id=uuid.uuid4(),
        sent_at=datetime.now(UTC),
        host_id="h1",
    )
    writing = asyncio.create_task(log.record(handed))
    await asyncio.sleep(1.5)
    assert not writing.done()
    assert await log.get(handed.message_id) == handed  # a repeat is a duplicate, from memory
    await silent.unsubscribe()
    await bus.js.create_key_value(bucket=bucket)
    back = time.monotonic()
    await asyncio.wait_for(writing, 10)
    assert time.monotonic() - back < ATTEMPT_TIMEOUT + RETRY_EVERY + 1.0
    stored = await kv.get(str(handed.message_id))
    assert stored.value is not None and HandedOver.model_validate_json(stored.value) == handed
    await bus.js.delete_key_value(bucket)
    await bus.nc.close()
