"""Decisions per second of two ratelimiter replicas against one nats-server (not a test).

    .venv/bin/python bench/ratelimit.py [--seconds 5] [--clients 64]

Four loads: many tenants granted (every decision is a compare-and-set append), routed as the dispatcher
routes (one replica per tenant) and through the queue group only (replicas contend on every tenant), one
hot tenant granted and one hot tenant denied (every decision is a read-only check).
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
from nats.aio.client import Client

from zaphub_contracts import streams, subjects
from zaphub_contracts.ratelimit import AcquireRequest, RateLimits
from zaphub_runtime.codec import encode
from zaphub_runtime.ratelimit_routes import RatelimiterRoutes

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_load(
    ncs: list[Client], tenants: list[uuid.UUID], seconds: float, clients: int, routed: bool = True
) -> float:
    """Closed loop: each client asks for a token, waits for the answer, asks again. Routed, each
    connection sends a tenant's requests to one replica as a dispatcher does; otherwise every request
    goes to the queue group, so the replicas contend on every tenant."""
    done = 0
    stop = time.monotonic() + seconds
    routes = [RatelimiterRoutes() for _ in ncs]

    async def client(i: int) -> None:
        nonlocal done
        nc, route = ncs[i % len(ncs)], routes[i % len(ncs)]
        tenant = tenants[i % len(tenants)]
        while time.monotonic() < stop:
            request = AcquireRequest(tenant_id=tenant, token_ids=[uuid.uuid4()])
            if routed:
                await route.request(nc, tenant, "acquire", request, 10)
            else:
                await nc.request(subjects.RATELIMIT_ACQUIRE, encode(request), timeout=10)
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return done / (time.monotonic() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rl-bench-"))
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = await asyncio.create_subprocess_exec(
        str(BIN / "nats-server"), "-js", "-sd", str(workdir / "js"), "-p", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, "ZAPHUB_NATS_URL": url, "ZAPHUB_LOG_LEVEL": "WARNING"}
    procs = [
        await asyncio.create_subprocess_exec(str(BIN / "zaphub-ratelimiter"), env=env)
        for _ in range(args.replicas)
    ]
    ncs: list[Client] = []
    try:
        await asyncio.sleep(1.0)
        ncs = [await nats.connect(url) for _ in range(2)]
        while True:  # until the replicas answer
            try:
                body = encode(AcquireRequest(tenant_id=uuid.uuid4(), token_ids=[uuid.uuid4()]))
                await ncs[0].request(subjects.RATELIMIT_ACQUIRE, body, timeout=1)
                break
            except nats.errors.Error:
                await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)  # let every replica subscribe
        bucket = await ncs[0].jetstream().key_value(streams.LIMITS_BUCKET.name)
        roomy = RateLimits(per_minute=1_000_000, per_hour=10_000_000, per_day=100_000_000)

        many = [uuid.uuid4() for _ in range(args.clients)]
        for tenant in many:
            await bucket.put(str(tenant), encode(roomy))
        hot = uuid.uuid4()
        await bucket.put(str(hot), encode(roomy))
        full = uuid.uuid4()
        await bucket.put(str(full), encode(RateLimits(per_minute=10)))
        await asyncio.sleep(0.5)

        c, r = args.clients, args.replicas
        for name, tenants, routed in (
            ("many tenants, granted", many, True),
            ("many, queue group only", many, False),
            ("one tenant, granted", [hot], True),
        ):
            rate = await run_load(ncs, tenants, args.seconds, c, routed)
            print(f"{name:<24} {rate:>8.0f} decisions/s  ({r} replicas, {c} concurrent clients)")
        rate = await run_load(ncs, [full], args.seconds, c)
        print(f"{'one tenant, denied':<24} {rate:>8.0f} decisions/s  ({r} replicas, {c} concurrent clients)")
    finally:
        for nc in ncs:
            await nc.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        server.send_signal(signal.SIGTERM)
        await server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
