"""The inbound path and webhook fan-out: simulated contacts message sessions through `simulate`, and
each message is counted once it is both stored in PostgreSQL (the projector's `messages` row) and
POSTed, signed, to a local webhook receiver."""

import asyncio
import time
from dataclasses import dataclass

import asyncpg

from bench.pipeline import caught_up, load
from bench.receiver import Receiver
from bench.stack import add_webhook, deactivate_webhook, tenant_with_sessions
from zaphub_contracts import streams
from zaphub_devstack.testing import Stack

RECEIVED = ["message.received"]
WEBHOOK_CONSUMERS = [
    streams.WEBHOOK_EVENTS_CONSUMER,
    streams.WEBHOOK_DELIVERY_CONSUMER,
    streams.WEBHOOK_RETRY_CONSUMER,
    streams.WEBHOOK_ATTEMPTS_CONSUMER,
    streams.PROJECTOR_CONSUMER,
]


@dataclass
class Inbound:
    accepted: int  # 202s of `simulate`
    msgs_per_s: float  # accepted / (first POST of the load → the last message stored and POSTed)
    lost: int  # accepted messages that never reached the receiver
    unsigned: int  # POSTs whose signature did not verify (not counted as arrived)


async def stored(stack: Stack, sessions: list[str]) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM messages WHERE direction = 'inbound' AND session_id = ANY($1::uuid[])",
            sessions,
        )
        return int(count)
    finally:
        await conn.close()


async def inbound(stack: Stack, seconds: float, connections: int = 32, idle: float = 15.0) -> Inbound:
    """Closed-loop `simulate` load on 16 sessions of one tenant with a `message.received` webhook."""
    key, sessions = await tenant_with_sessions(stack, 16, name="inbound")
    async with Receiver() as receiver:
        _, receiver.secrets["in"] = await add_webhook(stack, key, receiver.url("in"), RECEIVED)
        began = time.perf_counter()
        # Two load processes for the one tenant, as the sends use one per tenant.
        results = await load(stack, [(key, sessions)] * 2, seconds, connections, simulate=True)
        accepted = int(sum(r["requests"] for r in results))
        done, last_change, seen = began, time.perf_counter(), (-1, -1)
        while True:
            now_seen = (len(receiver.event_ids()), await stored(stack, sessions))
            if now_seen != seen:
                seen, last_change = now_seen, time.perf_counter()
                done = last_change
            if min(seen) >= accepted or time.perf_counter() - last_change > idle:
                break
            await asyncio.sleep(0.2)
        return Inbound(
            accepted=accepted,
            msgs_per_s=min(seen[0], seen[1], accepted) / (done - began) if done > began else 0.0,
            lost=max(0, accepted - seen[0]),
            unsigned=receiver.unsigned,
        )


async def webhook_fan_out(stack: Stack, seconds: float, connections: int = 32) -> float:
    """Signed POSTs a second to 4 webhooks of 2 tenants (2 each, `message.received`), sustained: over
    the last two thirds of a closed-loop inbound load on both tenants. The webhooks are deactivated then,
    so the deliveries still waiting are dropped instead of loading what the bench measures next."""
    tenants = [await tenant_with_sessions(stack, 8, name=f"hooks{t}") for t in range(2)]
    hooks: list[tuple[str, str]] = []  # (tenant key, webhook id)
    async with Receiver() as receiver:
        for t, (key, _) in enumerate(tenants):
            for w in range(2):
                name = f"t{t}w{w}"
                webhook_id, secret = await add_webhook(stack, key, receiver.url(name), RECEIVED)
                receiver.secrets[name] = secret
                hooks.append((key, webhook_id))
        began = time.perf_counter()
        await load(stack, tenants, seconds, connections, simulate=True)
        ended = time.perf_counter()
        for key, webhook_id in hooks:
            await deactivate_webhook(stack, key, webhook_id)
        await caught_up(stack, WEBHOOK_CONSUMERS)
        return receiver.rate(began + seconds / 3, ended)
