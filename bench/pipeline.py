"""The send pipeline end to end: API accept throughput and latency, and accept → `message.sent`."""

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import nats
from nats.aio.msg import Msg

from bench.stack import tenant_with_sessions
from zaphub_contracts import streams
from zaphub_contracts.events import MessageSent
from zaphub_devstack.testing import Stack

SENT_EVENTS = "zaphub.v1.evt.*.*.message.sent"


@dataclass
class Accept:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int


async def load_tenants(stack: Stack) -> list[tuple[str, list[str]]]:
    """Many sessions, as a gateway has: one WhatsApp number sends a few messages a second at most."""
    return [await tenant_with_sessions(stack, 16, name=f"load{i}") for i in range(4)]


@contextlib.asynccontextmanager
async def sends_paused(stack: Stack, longest: float) -> AsyncIterator[None]:
    """The dispatchers' send consumer paused (a JetStream consumer pause, at most `longest` seconds):
    the API accepts and publishes as ever, and the commands wait in the stream."""
    nc = await nats.connect(stack.nats_url)
    spec = streams.SEND_CONSUMER
    try:
        until = datetime.now(UTC) + timedelta(seconds=longest)
        await nc.jetstream().pause_consumer(spec.stream, spec.durable, until.isoformat())
        try:
            yield
        finally:
            await nc.jetstream().resume_consumer(spec.stream, spec.durable)
    finally:
        await nc.close()


async def api_accept(
    stack: Stack,
    tenants: list[tuple[str, list[str]]],
    seconds: float,
    connections: int,
    *,
    alone: bool = False,
) -> tuple[Accept, float]:
    """Closed-loop POST load from separate processes; also counts the sends that reach `message.sent`.

    Returns the accept figures and a send rate: `message.sent` events over the time from the first
    accept (or, `alone`, from the end of the load) to the last of them. `alone` pauses the sends while
    the load runs, so the API has the machine to itself and the figure is the API's; the send rate is
    then that of the pipeline draining the backlog the load left.
    """
    sent = 0
    last_sent = 0.0
    nc = await nats.connect(stack.nats_url)

    async def on_sent(_: Msg) -> None:
        nonlocal sent, last_sent
        sent += 1
        last_sent = time.perf_counter()

    await nc.subscribe(SENT_EVENTS, cb=on_sent)
    async with sends_paused(stack, longest=seconds + 60) if alone else contextlib.nullcontext():
        began = time.perf_counter()
        results = await _load(stack, tenants, seconds, connections)
    if alone:
        began = time.perf_counter()
    accepted = int(sum(r["requests"] for r in results))
    # Wait for the pipeline to drain what was accepted.
    while sent < accepted and time.perf_counter() - max(last_sent, began) < 10:  # noqa: ASYNC110 - bounded poll of a counter
        await asyncio.sleep(0.2)
    await nc.close()
    elapsed = max(r["seconds"] for r in results)
    accept = Accept(
        rps=accepted / elapsed,
        p50_ms=max(r["p50_ms"] for r in results),
        p99_ms=max(r["p99_ms"] for r in results),
        requests=accepted,
    )
    return accept, sent / (last_sent - began) if last_sent > began else 0.0


async def _load(
    stack: Stack, tenants: list[tuple[str, list[str]]], seconds: float, connections: int
) -> list[dict[str, float]]:
    """`bench.load` run once per tenant, the connections shared out between them."""
    loads = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            stack.api_url,
            key,
            str(seconds),
            str(connections // len(tenants)),
            *sessions,
            stdout=asyncio.subprocess.PIPE,
        )
        for key, sessions in tenants
    ]
    return [json.loads((await load.communicate())[0]) for load in loads]


async def projection_catch_up(stack: Stack, timeout: float = 180.0) -> float:
    """Seconds until the projector has written every event to PostgreSQL (statuses are current), so
    the next measure does not share the API process with a backlog."""
    nc = await nats.connect(stack.nats_url)
    began = time.perf_counter()
    try:
        while time.perf_counter() - began < timeout:
            spec = streams.PROJECTOR_CONSUMER
            info = await nc.jetstream().consumer_info(spec.stream, spec.durable)
            if info.num_pending == 0 and info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
    return time.perf_counter() - began


async def latency_at_rate(stack: Stack, rate: float, seconds: float) -> tuple[float, float]:
    """p50 and p99 ms from POST to `message.sent`, sending open-loop at a fixed rate."""
    key, sessions = await tenant_with_sessions(stack, 32, name="latency")
    started: dict[str, float] = {}
    done: dict[str, float] = {}
    nc = await nats.connect(stack.nats_url)

    async def on_sent(msg: Msg) -> None:
        event = MessageSent.model_validate_json(msg.data)
        done[str(event.data.message_id)] = time.perf_counter()

    await nc.subscribe(SENT_EVENTS, cb=on_sent)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"to": "+5511988887777", "type": "text", "text": "latency probe"}
    async with aiohttp.ClientSession(stack.api_url, headers=headers) as http:

        async def one(i: int) -> None:
            t0 = time.perf_counter()
            async with http.post(f"/api/v1/sessions/{sessions[i % len(sessions)]}/messages", json=body) as r:
                message_id = (await r.json())["id"]
            started[message_id] = t0

        tasks = []
        interval = 1 / rate
        origin = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, origin + i * interval - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 15
    while len(done.keys() & started.keys()) < len(started) and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    await nc.close()
    latencies = sorted(1000 * (done[m] - started[m]) for m in started if m in done)
    if not latencies:
        return 0.0, 0.0
    return latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
