"""The baseline: raw JetStream publish and consume of messages the size of a send command, on the
same server and in the same run as the pipeline it is compared with."""

import asyncio
import time
import uuid
from datetime import UTC, datetime

import nats
from nats.js import api

from zaphub_contracts.commands import SendMessage
from zaphub_contracts.content import TextContent
from zaphub_runtime.codec import encode

STREAM = "BENCH_BASELINE"


def command_sized_payload() -> bytes:
    return encode(
        SendMessage(
            tenant_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            issued_at=datetime.now(UTC),
            message_id=uuid.uuid4(),
            seq=1,
            to="5511988887777@s.whatsapp.net",
            content=TextContent(text="benchmark message"),
        )
    )


async def baseline(nats_url: str, count: int, concurrency: int = 64) -> float:
    """Messages per second through publish (with ack) → pull → ack, publisher and consumer at once."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await js.add_stream(
        api.StreamConfig(name=STREAM, subjects=["bench.baseline.>"], storage=api.StorageType.FILE)
    )
    payload = command_sized_payload()
    sub = await js.pull_subscribe("bench.baseline.>", durable="baseline", stream=STREAM)
    consumed = 0
    started = time.perf_counter()

    async def publisher(worker: int) -> None:
        for i in range(worker, count, concurrency):
            await js.publish(f"bench.baseline.{i % 16}", payload, headers={"Nats-Msg-Id": f"{i}"})

    async def consumer() -> None:
        nonlocal consumed
        while consumed < count:
            try:
                msgs = await sub.fetch(256, timeout=1)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in msgs:
                await msg.ack()
            consumed += len(msgs)

    await asyncio.gather(consumer(), *(publisher(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    await js.delete_stream(STREAM)
    await nc.close()
    return count / elapsed
