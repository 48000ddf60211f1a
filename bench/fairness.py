"""One noisy tenant: tenant B's accept → `message.sent` p99 at a steady rate, alone and while tenant A
floods the API with its queue full (a low rate limit and `max_queued`, so most of its POSTs get 429)
and its webhooks black-holed (every delivery waits for its deadline).

B sends at a fifth of the rate this machine sends without a backlog (measured earlier in the run): at a
fixed 100 msg/s, B alone was near the pipeline's knee on a slow machine (p50 of 150-220 ms, growing
probe to probe) and measured queueing, not the flood.

A's flood begins with a burst its limits allow (600 sends, its 200 queued): on two cores the pipeline
sends that burst at the machine's full rate, and B's sends share those seconds with it. B's p99 during
the burst is recorded apart (`burst_p99_ms`); the ratio is taken once A's queue is full, the state the
goal names. A may send 600 an hour as well as a minute: with more an hour, its minute's tokens came
back 60 s after the burst and it burst again inside the flooded probes, in some runs and not others
(one run's flooded probes: 38 ms to 833 ms).

Each p99 is the median of several short probes in a row: one stall of the machine (half a second of a
neighbour's load) sets the p99 of the window it falls in, and the median leaves that window out where
a mean or one long probe took it in. The spread of the middle probes is the run's own noise."""

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx

from bench.pipeline import latency_at_rate, load
from bench.receiver import BlackHole
from bench.stack import add_webhook, tenant_with_sessions
from zaphub_devstack.testing import Stack

QUIET_SHARE = 0.2  # of the no-backlog send rate: B's sends a second, open loop
QUIET_FLOOR = 20.0  # msgs a second: fewer leave too few samples for a p99 in a probe
PROBES = 5  # probes of each state; the p99 is their median
BURST_PROBE = 4.0  # seconds of B's probe from the start of A's flood
QUEUE_FULL = "send-queue-full"  # the problem type of A's refusals once its queue is full


@dataclass
class Fairness:
    quiet_rate: float  # B's sends a second
    alone_p99_ms: list[float]  # B's p99 in each probe before the flood
    burst_p99_ms: float  # B's p99 while A's allowed burst is being sent
    queue_full_after_s: float  # seconds from the flood's start to A's first queue-full refusal
    flooded_p99_ms: list[float]  # B's p99 in each probe once A's queue is full
    noisy_accepted: int  # A's 202s during the flood
    noisy_refused: int  # A's other answers (429 once its queue is full)
    held_connections: int  # connections A's webhooks held open at the black hole
    noisy_unanswered: int  # A's requests the API never answered (their connections given up)


def quiet_rate(no_backlog_msgs_per_s: float) -> float:
    return max(QUIET_FLOOR, QUIET_SHARE * no_backlog_msgs_per_s)


def median_and_spread(p99s: list[float]) -> tuple[float, float]:
    """The median of the probes' p99s, and the spread of the middle half of them over it."""
    ordered = sorted(p99s)
    n = len(ordered)
    median = statistics.median(ordered)
    low, high = ordered[(n - 1) // 4], ordered[n - 1 - (n - 1) // 4]
    return median, (high - low) / median if median else 0.0


async def fairness(stack: Stack, seconds: float, rate: float, connections: int = 32) -> Fairness:
    """B's p99 in `PROBES` probes of `seconds` each, alone and flooded, at `rate` sends a second."""
    quiet = await tenant_with_sessions(stack, 8, name="quiet")
    noisy = await tenant_with_sessions(
        stack, 8, name="noisy", rate_limits={"per_minute": 600, "per_hour": 600}, max_queued=200
    )

    async def probes() -> list[float]:
        return [(await latency_at_rate(stack, rate, seconds, tenant=quiet))[1] for _ in range(PROBES)]

    alone = await probes()
    async with BlackHole() as hole:
        for n in range(4):
            await add_webhook(stack, noisy[0], hole.url(str(n)), ["*"])
        # The flood outlasts B's probes: the burst probe, the wait for a full queue, the steady probe.
        began = time.perf_counter()
        flood_s = PROBES * (seconds + 1) + BURST_PROBE + 20
        flood = asyncio.create_task(load(stack, [noisy] * 2, flood_s, connections))
        _, burst_p99 = await latency_at_rate(stack, rate, BURST_PROBE, tenant=quiet)
        full_after = await _until_queue_full(stack, noisy) - began
        flooded = await probes()
        results = await flood
        return Fairness(
            quiet_rate=rate,
            alone_p99_ms=alone,
            burst_p99_ms=burst_p99,
            queue_full_after_s=full_after,
            flooded_p99_ms=flooded,
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
