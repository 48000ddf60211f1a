"""The request/reply baseline: raw NATS round trips to two responder processes in a queue group, on the
stack's nats-server, loaded as `bench.ratelimit` loads the ratelimiters (the same clients, connections
and request size), so that rate-limit decisions can be read as a share of what the bus allows.

With `append`, each responder first publishes the request to a JetStream stream and waits for its ack,
as a ratelimiter appends each grant to its log: the I/O of a decision without its logic, which bounds
how close the decisions can come to the bare round trip.

    python -m bench.nats_rr <nats_url> [append]      # one responder
"""

import asyncio
import sys
import time
import uuid

import nats
import uvloop
from nats.aio.msg import Msg
from nats.js import api

from zaphub_contracts.ratelimit import AcquireReply, AcquireRequest
from zaphub_runtime.codec import encode

SUBJECT = "bench.rr"
QUEUE = "bench-rr"
# The appending responders' log: file storage and one replica, as the grant log on a single node.
LOG_STREAM = "BENCH_RR_LOG"
LOG = api.StreamConfig(name=LOG_STREAM, subjects=["bench.rrlog.>"], storage=api.StorageType.FILE)
RESPONDERS = 2
REPLY = encode(AcquireReply(granted=1))


async def respond(nats_url: str, append: bool) -> None:
    """Answer every request with a reply the size of a grant, until killed; with `append`, once the
    request is stored in `LOG`."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    log_subject = f"bench.rrlog.{nc.client_id}"

    async def answer(msg: Msg) -> None:
        if append:
            await js.publish(log_subject, msg.data, timeout=10)
        await msg.respond(REPLY)

    tasks: set[asyncio.Task[None]] = set()

    async def spawn(msg: Msg) -> None:
        # A task per request, as the ratelimiter spawns them: a callback runs one message at a time.
        task = asyncio.create_task(answer(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await nc.subscribe(SUBJECT, queue=QUEUE, cb=spawn)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def baseline(nats_url: str, seconds: float, clients: int = 64, append: bool = False) -> float:
    """Round trips a second: `clients` closed loops over two connections, as in `bench.ratelimit`."""
    ncs = [await nats.connect(nats_url) for _ in range(2)]
    if append:
        await ncs[0].jetstream().add_stream(LOG)
    mode = ["append"] if append else []
    responders = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.nats_rr", nats_url, *mode, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(RESPONDERS)
    ]
    try:
        for responder in responders:
            assert responder.stdout is not None
            await responder.stdout.readline()
        tenant = uuid.uuid4()
        done = 0
        stop = time.monotonic() + seconds

        async def client(i: int) -> None:
            nonlocal done
            nc = ncs[i % len(ncs)]
            while time.monotonic() < stop:
                # Built per request, as `bench.ratelimit` builds each: only the server side differs.
                body = encode(AcquireRequest(tenant_id=tenant, token_ids=[uuid.uuid4()]))
                await nc.request(SUBJECT, body, timeout=10)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(client(i) for i in range(clients)))
        return done / (time.monotonic() - started)
    finally:
        for responder in responders:
            responder.terminate()
            await responder.wait()
        if append:
            await ncs[0].jetstream().delete_stream(LOG_STREAM)
        for nc in ncs:
            await nc.close()


if __name__ == "__main__":
    uvloop.run(respond(sys.argv[1], sys.argv[2:] == ["append"]))
