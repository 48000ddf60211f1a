"""Rate-limit decisions per second on the stack's ratelimiter replicas, and the overshoot an oracle
counts in the grant log (tokens granted beyond any window's limit; must be 0)."""

import uuid
from bisect import bisect_right

import nats
from nats.js import api

from bench.ratelimit import run_load
from zaphub_contracts import streams, subjects
from zaphub_contracts.ratelimit import WINDOW_SECONDS, GrantLogRecord, RateLimits
from zaphub_runtime.codec import encode

NS = 1_000_000_000


def overshoot(grant_times_ns: list[int], limits: RateLimits) -> int:
    """Brute force: for each grant, the grants in the window ending at it, beyond the limit."""
    times = sorted(grant_times_ns)
    worst = 0
    for window, limit in limits.by_window().items():
        length = WINDOW_SECONDS[window] * NS
        for i, t in enumerate(times):
            inside = i + 1 - bisect_right(times, t - length)
            worst = max(worst, inside - limit)
    return worst


async def grants_of(nats_url: str, tenant: uuid.UUID) -> list[int]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    sub = await js.subscribe(
        subjects.ratelimit_grants(tenant),
        stream=streams.RATELIMIT.name,
        ordered_consumer=True,
        config=api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL),
    )
    live: dict[uuid.UUID, int] = {}
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except (nats.errors.TimeoutError, TimeoutError):
                break
            record = GrantLogRecord.model_validate_json(msg.data)
            for token in record.grants:
                live[token] = record.at_ns
            for token in record.releases:
                live.pop(token, None)
    finally:
        await nc.close()
    return list(live.values())


async def measure(nats_url: str, seconds: float, clients: int = 64) -> tuple[float, int]:
    """Decisions per second (many granted tenants, routed as the dispatcher routes) and the overshoot
    of one hot, limited tenant that both replicas decide for."""
    nc = await nats.connect(nats_url)
    ncs = [nc, await nats.connect(nats_url)]
    bucket = await nc.jetstream().key_value(streams.LIMITS_BUCKET.name)
    roomy = RateLimits(per_minute=1_000_000, per_hour=10_000_000, per_day=100_000_000)
    tenants = [uuid.uuid4() for _ in range(clients)]
    for tenant in tenants:
        await bucket.put(str(tenant), encode(roomy))
    hot = uuid.uuid4()
    tight = RateLimits(per_minute=50, per_hour=80, per_day=100)
    await bucket.put(str(hot), encode(tight))
    rate = await run_load(ncs, tenants, seconds, clients)
    # The exactness check asks through the queue group: both replicas decide for the hot tenant.
    await run_load(ncs, [hot], seconds, clients, routed=False)
    for client in ncs:
        await client.close()
    return rate, overshoot(await grants_of(nats_url, hot), tight)
