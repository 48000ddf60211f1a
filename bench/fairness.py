"""One noisy tenant: tenant B's accept → `message.sent` p99 at a steady rate, alone and while tenant A
floods the API with its queue full (a low rate limit and `max_queued`, so most of its POSTs get 429)
and its webhooks black-holed (every delivery waits for its deadline)."""

import asyncio
from dataclasses import dataclass

from bench.pipeline import latency_at_rate, load
from bench.receiver import BlackHole
from bench.stack import add_webhook, tenant_with_sessions
from zaphub_devstack.testing import Stack

QUIET_RATE = 100.0  # B's sends a second, open loop


@dataclass
class Fairness:
    alone_p99_ms: float
    flooded_p99_ms: float
    noisy_accepted: int  # A's 202s during the flood
    noisy_refused: int  # A's other answers (429 once its queue is full)
    held_connections: int  # connections A's webhooks held open at the black hole
    noisy_unanswered: int  # A's requests the API never answered (their connections given up)

    @property
    def p99_ratio(self) -> float:
        return self.flooded_p99_ms / self.alone_p99_ms if self.alone_p99_ms > 0 else 0.0


async def fairness(stack: Stack, seconds: float, connections: int = 32) -> Fairness:
    quiet = await tenant_with_sessions(stack, 8, name="quiet")
    noisy = await tenant_with_sessions(
        stack, 8, name="noisy", rate_limits={"per_minute": 600, "per_hour": 36000}, max_queued=200
    )
    _, alone_p99 = await latency_at_rate(stack, QUIET_RATE, seconds, tenant=quiet)
    async with BlackHole() as hole:
        for n in range(4):
            await add_webhook(stack, noisy[0], hole.url(str(n)), ["*"])
        # The flood starts first and outlasts B's probe by a few seconds at each end.
        flood = asyncio.create_task(load(stack, [noisy] * 2, seconds + 6, connections))
        await asyncio.sleep(3)
        _, flooded_p99 = await latency_at_rate(stack, QUIET_RATE, seconds, tenant=quiet)
        results = await flood
        return Fairness(
            alone_p99_ms=alone_p99,
            flooded_p99_ms=flooded_p99,
            noisy_accepted=int(sum(r["requests"] for r in results)),
            noisy_refused=int(sum(r["errors"] for r in results)),
            held_connections=hole.connections,
            noisy_unanswered=int(sum(r.get("unanswered", 0) for r in results)),
        )
