"""Replicas racing on one tenant's grant log (in-process limiters, real JetStream): the CAS keeps it exact."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from zaphub_contracts.ratelimit import RateLimits
from zaphub_ratelimiter.grant_log import GrantLog
from zaphub_ratelimiter.limiter import Limiter
from zaphub_ratelimiter.limits import TenantLimits
from zaphub_runtime.bus import Bus


@pytest.fixture
async def limiters(nats_url: str) -> AsyncIterator[list[Limiter]]:
    """Three limiters, each with its own connection, as three replicas would have."""
    buses = [await Bus.connect(nats_url, name=f"rl-{i}", source=f"/test/{i}") for i in range(3)]
    await buses[0].ensure_streams()
    defaults = RateLimits(per_minute=5, per_hour=8, per_day=100)
    yield [Limiter(GrantLog(bus), TenantLimits(defaults)) for bus in buses]
    for bus in buses:
        await bus.close()


async def test_a_stale_replica_loses_the_race_and_decides_again(limiters: list[Limiter]) -> None:
    """A replica that missed another's grant is refused by the log, catches up and denies exactly."""
    a, b, _ = limiters
    tenant = uuid.uuid4()
    for _ in range(3):
        assert (await a.acquire(tenant, [uuid.uuid4()])).granted
    assert (await b.acquire(tenant, [uuid.uuid4()])).granted  # b loads a's three grants, adds a fourth
    assert (await b.acquire(tenant, [uuid.uuid4()])).granted
    reply = await a.acquire(tenant, [uuid.uuid4()])  # a still believes three were granted
    assert not reply.granted
    assert reply.window == "minute"
    assert a.conflicts == 1


async def test_racing_replicas_grant_exactly_the_limit(limiters: list[Limiter]) -> None:
    """Hundreds of concurrent acquires spread over three replicas grant exactly the tightest limit."""
    tenant = uuid.uuid4()
    replies = await asyncio.gather(
        *(limiters[i % 3].acquire(tenant, [uuid.uuid4()]) for i in range(300)),
    )
    assert sum(r.granted for r in replies) == 5
    # Grants spread over replicas that raced, and every loser re-decided against the full log.
    usage = [await limiter.usage(tenant) for limiter in limiters]
    assert all([w.used for w in u.windows] == [5, 5, 5] for u in usage)


async def test_release_on_one_replica_frees_a_token_on_another(limiters: list[Limiter]) -> None:
    """A release written by one replica is seen by the next decision of any other."""
    a, b, c = limiters
    tenant = uuid.uuid4()
    tokens = [uuid.uuid4() for _ in range(5)]
    for token in tokens:
        assert (await a.acquire(tenant, [token])).granted
    assert not (await b.acquire(tenant, [uuid.uuid4()])).granted
    assert (await c.release(tenant, [tokens[0]])).released
    assert (await b.acquire(tenant, [uuid.uuid4()])).granted
    # A repeated acquire of a token released elsewhere is a new spend, not a stale "still granted".
    assert not (await a.acquire(tenant, [tokens[0]])).granted
