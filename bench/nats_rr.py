"""The request/reply baseline: raw NATS round trips to two responder processes in a queue group, on the
stack's nats-server, loaded as `bench.ratelimit` loads the ratelimiters (the same clients, connections
and request size), so that rate-limit decisions can be read as a share of what the bus allows.

    python -m bench.nats_rr <nats_url>      # one responder
"""

import asyncio
import sys
import time
import uuid

import nats
import uvloop
from nats.aio.msg import Msg

from zaphub_contracts.ratelimit import AcquireReply, AcquireRequest
from zaphub_runtime.codec import encode

SUBJECT = "bench.rr"
QUEUE = "bench-rr"
RESPONDERS = 2
REPLY = encode(AcquireReply(granted=1))


async def respond(nats_url: str) -> None:
    """Answer every request with a reply the size of a grant, until killed."""
    nc = await nats.connect(nats_url)

    async def answer(msg: Msg) -> None:
        await msg.respond(REPLY)

    await nc.subscribe(SUBJECT, queue=QUEUE, cb=answer)
    await nc.flush()
    print("ready", flush=True)
    await asyncio.Event().wait()


async def baseline(nats_url: str, seconds: float, clients: int = 64) -> float:
    """Round trips a second: `clients` closed loops over two connections, as in `bench.ratelimit`."""
    responders = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.nats_rr", nats_url, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(RESPONDERS)
    ]
    ncs = [await nats.connect(nats_url) for _ in range(2)]
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
        for nc in ncs:
            await nc.close()
        for responder in responders:
            responder.terminate()
            await responder.wait()


if __name__ == "__main__":
    uvloop.run(respond(sys.argv[1]))
