"""One noisy tenant: tenant B's accept → `message.sent` p99 at a steady rate, alone and while tenant A
floods the API with its queue full (a low rate limit and `max_queued`, so most of its POSTs get 429)
and its webhooks black-holed (every delivery waits for its deadline).

A's flood begins with a burst its limits allow (600 sends a minute, its 200 queued): on two cores the
pipeline sends that burst at the machine's full rate, and B's sends share those seconds with it. B's p99
during the burst is recorded apart (`burst_p99_ms`); the ratio is taken once A's queue is full, the
state the goal names. Each p99 is the mean of two probes in a row, their spread recorded as the run's
own noise (`*_drift`)."""

import asyncio
import time
from dataclasses import dataclass

import httpx

from bench.pipeline import latency_at_rate, load
from bench.receiver import BlackHole
from bench.stack import add_webhook, tenant_with_sessions
from zaphub_devstack.testing import Stack

QUIET_RATE = 100.0  # B's sends a second, open loop
BURST_PROBE = 4.0  # seconds of B's probe from the start of A's flood
QUEUE_FULL = "send-queue-full"  # the problem type of A's refusals once its queue is full


@dataclass
class Fairness:
    alone_p99_ms: tuple[float, float]  # two probes in a row before the flood
    burst_p99_ms: float  # B's p99 while A's allowed burst is being sent
    queue_full_after_s: float  # seconds from the flood's start to A's first queue-full refusal
    flooded_p99_ms: tuple[float, float]  # two probes in a row once A's queue is full
    noisy_accepted: int  # A's 202s during the flood
    noisy_refused: int  # A's other answers (429 once its queue is full)
    held_connections: int  # connections A's webhooks held open at the black hole
    noisy_unanswered: int  # A's requests the API never answered (their connections given up)


async def fairness(stack: Stack, seconds: float, connections: int = 32) -> Fairness:
    quiet = await tenant_with_sessions(stack, 8, name="quiet")
    noisy = await tenant_with_sessions(
        stack, 8, name="noisy", rate_limits={"per_minute": 600, "per_hour": 36000}, max_queued=200
    )
    alone = [(await latency_at_rate(stack, QUIET_RATE, seconds, tenant=quiet))[1] for _ in range(2)]
    async with BlackHole() as hole:
        for n in range(4):
            await add_webhook(stack, noisy[0], hole.url(str(n)), ["*"])
        # The flood outlasts B's probes: the burst probe, the wait for a full queue, the steady probe.
        began = time.perf_counter()
        flood = asyncio.create_task(load(stack, [noisy] * 2, 2 * seconds + BURST_PROBE + 20, connections))
        _, burst_p99 = await latency_at_rate(stack, QUIET_RATE, BURST_PROBE, tenant=quiet)
        full_after = await _until_queue_full(stack, noisy) - began
        flooded = [(await latency_at_rate(stack, QUIET_RATE, seconds, tenant=quiet))[1] for _ in range(2)]
        results = await flood
        return Fairness(
            alone_p99_ms=(alone[0], alone[1]),
            burst_p99_ms=burst_p99,
            queue_full_after_s=full_after,
            flooded_p99_ms=(flooded[0], flooded[1]),
            noisy_accepted=int(sum(r["requests"] for r in results)),
            noisy_refused=int(sum(r["errors"] for r in results)),
            held_connections=hole.connections,
            noisy_unanswered=int(sum(r.get("unanswered", 0) for r in results)),
        )


async def _until_queue_full(stack: Stack, tenant: tuple[str, list[str]], timeout: float = 15.0) -> float:
    """When one more send of the tenant is refused for its full queue (perf_counter time)."""
    key, sessions = tenant
    body = {"to": "+5511988887777", "type": "text", "text": "is the queue full?"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            answer = await http.post(
                f"/api/v1/sessions/{sessions[0]}/messages",
                json=body,
                headers={"Authorization": f"Bearer {key}"},
            )
            if answer.status_code == 429 and QUEUE_FULL in answer.json().get("type", ""):
                return time.perf_counter()
            await asyncio.sleep(0.25)
    raise RuntimeError(f"the noisy tenant's queue was not full within {timeout} s")
