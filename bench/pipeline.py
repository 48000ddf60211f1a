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
Tenants = list[tuple[str, list[str]]]


@dataclass
class Accept:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    load_cpu_s: float  # the CPU the load generators spent


@dataclass
class Trial:
    """One paced load: the rate asked for, the rate of 202s, and the rate of `message.sent` events
    once the pipeline has warmed up."""

    offered: float
    accepted: float
    sent: float

    @property
    def kept_up(self) -> bool:
        return self.accepted >= 0.98 * self.offered and self.sent >= 0.97 * self.accepted


class SentEvents:
    """The arrival times of `message.sent` events, over a connection of its own."""

    def __init__(self) -> None:
        self.times: list[float] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def counting(cls, stack: Stack) -> AsyncIterator["SentEvents"]:
        nc = await nats.connect(stack.nats_servers)
        events = cls()
        try:
            await nc.subscribe(SENT_EVENTS, cb=events._on_sent)
            yield events
        finally:
            await nc.close()

    async def _on_sent(self, _: Msg) -> None:
        self.times.append(time.perf_counter())

    def rate(self, since: float, until: float | None = None) -> float:
        """Events a second from `since` to `until` (by default, to the last event)."""
        until = until if until is not None else (self.times[-1] if self.times else since)
        count = sum(1 for t in self.times if since <= t <= until)
        return count / (until - since) if until > since else 0.0

    async def drained(self, accepted: int, idle: float = 10.0) -> None:
        """Until every accepted send has its event, or none has come for `idle` seconds."""
        began = time.perf_counter()
        while len(self.times) < accepted:
            if time.perf_counter() - max(self.times[-1] if self.times else 0.0, began) > idle:
                return
            await asyncio.sleep(0.2)


async def load_tenants(stack: Stack) -> Tenants:
    """Many sessions, as a gateway has: one WhatsApp number sends a few messages a second at most."""
    return [await tenant_with_sessions(stack, 16, name=f"load{i}") for i in range(4)]


@contextlib.asynccontextmanager
async def sends_paused(stack: Stack, longest: float) -> AsyncIterator[None]:
    """The dispatchers' send consumer paused (a JetStream consumer pause, at most `longest` seconds):
    the API accepts and publishes as ever, and the commands wait in the stream."""
    nc = await nats.connect(stack.nats_servers)
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


@dataclass
class LoadRun:
    """One load of `bench.load` processes, and the `message.sent` events from its start until what it
    got accepted was sent."""

    results: list[dict[str, float]]
    began: float
    ended: float
    sent: SentEvents

    @property
    def accepted(self) -> int:
        return int(sum(r["requests"] for r in self.results))

    @property
    def accept_rate(self) -> float:
        return self.accepted / max(r["seconds"] for r in self.results)


async def api_accept(
    stack: Stack, tenants: Tenants, seconds: float, connections: int, *, alone: bool = False
) -> tuple[Accept, float]:
    """Closed-loop POST load from separate processes, and the send rate that went with it.

    `alone` pauses the sends while the load runs, so the API has the machine to itself and the figure
    is the API's; the send rate is then that of the pipeline draining the backlog the load left, from
    the end of the load to the last `message.sent`. Otherwise it is the send rate during the load.
    """
    run = await _load_until_sent(stack, tenants, seconds, connections, paused=alone)
    accept = _accept(run.results)
    if alone:
        return accept, run.sent.rate(run.ended)
    # From the first send, not from the spawn of the load processes.
    return accept, run.sent.rate(run.sent.times[0] if run.sent.times else run.began, run.ended)


async def http_accept(stack: Stack, tenants: Tenants, seconds: float, connections: int, url: str) -> Accept:
    """The same closed-loop load as `api_accept`, at another server (`url`): the HTTP baseline."""
    return _accept(await load(stack, tenants, seconds, connections, url=url))


def _accept(results: list[dict[str, float]]) -> Accept:
    return Accept(
        rps=sum(r["requests"] for r in results) / max(r["seconds"] for r in results),
        p50_ms=max(r["p50_ms"] for r in results),
        p99_ms=max(r["p99_ms"] for r in results),
        requests=int(sum(r["requests"] for r in results)),
        load_cpu_s=sum(r["cpu_s"] for r in results),
    )


async def sustained(stack: Stack, tenants: Tenants, ceiling: float, seconds: float, steps: int) -> Trial:
    """The highest paced rate at which the sends keep up with the accepts, both on the same cores:
    bisected between a quarter of `ceiling` and `ceiling` in `steps` paced loads. Below saturation a
    lane holds a command or two, so runs are short and each send costs more than under saturation."""
    low, high = ceiling / 4, ceiling  # the low end is not assumed to pass: `best` stays 0 then
    best = Trial(0.0, 0.0, 0.0)
    if ceiling <= 0:
        return best
    for _ in range(steps):
        trial = await paced(stack, tenants, (low + high) / 2, seconds)
        if trial.kept_up:
            low, best = trial.offered, trial
        else:
            high = trial.offered
    return best


async def paced(stack: Stack, tenants: Tenants, rate: float, seconds: float) -> Trial:
    """One paced load at `rate`, then the pipeline and the projector drained, so the next starts
    clean. The send rate is counted after the first third, once the pipeline is under way."""
    run = await _load_until_sent(stack, tenants, seconds, connections=64, rate=rate)
    await projection_catch_up(stack)
    return Trial(
        offered=rate, accepted=run.accept_rate, sent=run.sent.rate(run.began + seconds / 3, run.ended)
    )


async def _load_until_sent(
    stack: Stack,
    tenants: Tenants,
    seconds: float,
    connections: int,
    *,
    rate: float | None = None,
    paused: bool = False,
) -> LoadRun:
    """`load`, counting `message.sent` events until what it got accepted is sent; `paused` holds the
    sends for as long as the load runs."""
    async with SentEvents.counting(stack) as sent:
        async with sends_paused(stack, longest=seconds + 60) if paused else contextlib.nullcontext():
            began = time.perf_counter()
            results = await load(stack, tenants, seconds, connections, rate)
            ended = time.perf_counter()
        run = LoadRun(results, began, ended, sent)
        await sent.drained(run.accepted)
    return run


async def load(
    stack: Stack,
    tenants: Tenants,
    seconds: float,
    connections: int,
    rate: float | None = None,
    *,
    url: str | None = None,
    simulate: bool = False,
) -> list[dict[str, float]]:
    """`bench.load` run once per tenant, the connections and the rate shared out between them; `url`
    points it at another server than the stack's API, `simulate` makes it inbound traffic."""
    flags = (["--rate", str(rate / len(tenants))] if rate else []) + (["--simulate"] if simulate else [])
    loads = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.load",
            *flags,
            url or stack.api_url,
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
    return await caught_up(stack, [streams.PROJECTOR_CONSUMER], timeout)


async def caught_up(stack: Stack, specs: list[streams.ConsumerSpec], timeout: float = 180.0) -> float:
    """Seconds until none of these consumers has a message pending or unacknowledged."""
    nc = await nats.connect(stack.nats_servers)
    began = time.perf_counter()
    try:
        while time.perf_counter() - began < timeout:
            infos = [await nc.jetstream().consumer_info(spec.stream, spec.durable) for spec in specs]
            if all(info.num_pending == 0 and info.num_ack_pending == 0 for info in infos):
                break
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
    return time.perf_counter() - began


async def latency_at_rate(
    stack: Stack, rate: float, seconds: float, tenant: tuple[str, list[str]] | None = None
) -> tuple[float, float]:
    """p50 and p99 ms from POST to `message.sent`, sending open-loop at a fixed rate (by default as a
    new tenant with 32 sessions)."""
    key, sessions = tenant or await tenant_with_sessions(stack, 32, name="latency")
    started: dict[str, float] = {}
    done: dict[str, float] = {}
    nc = await nats.connect(stack.nats_servers)

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
