"""Several ratelimiter replicas and several clients at once: exact limits, and restarts reset nothing."""

import asyncio
import uuid

import nats
import pytest

from zaphub_contracts.ratelimit import RateLimits

from .conftest import Replicas
from .test_service import acquire, set_limits, usage

pytestmark = pytest.mark.slow


async def test_replicas_grant_exactly_the_limit_and_survive_kill_9(replicas: Replicas, nats_url: str) -> None:
    """3 replicas and 2 client connections grant exactly `limit`; SIGKILL and restart keep the hour."""
    await asyncio.gather(*(replicas.start(i) for i in range(3)))
    dispatchers = [await nats.connect(nats_url) for _ in range(2)]
    try:
        tenant, bystander = uuid.uuid4(), uuid.uuid4()
        await set_limits(dispatchers[0], tenant, RateLimits(per_minute=1000, per_hour=25, per_day=1000))
        await set_limits(dispatchers[0], bystander, RateLimits(per_minute=7))
        await asyncio.sleep(0.3)

        replies = await asyncio.gather(
            *(acquire(dispatchers[i % 2], tenant) for i in range(300)),
            *(acquire(dispatchers[i % 2], bystander) for i in range(40)),
        )
        mine, theirs = replies[:300], replies[300:]
        assert sum(r.granted for r in mine) == 25
        assert sum(r.granted for r in theirs) == 7
        assert {r.window for r in mine if not r.granted} == {"hour"}
        assert {r.window for r in theirs if not r.granted} == {"minute"}

        await replicas.kill(0)
        await replicas.start(0)
        await replicas.kill(1)
        await replicas.kill(2)  # only the restarted replica is left; it rebuilt the tenant from the log

        after = await asyncio.gather(*(acquire(dispatchers[i % 2], tenant) for i in range(20)))
        assert not any(r.granted for r in after)
        assert all(r.window == "hour" and 3000 < r.retry_after <= 3600 for r in after)
        assert await usage(dispatchers[0], tenant) == {"minute": 25, "hour": 25, "day": 25}
    finally:
        for nc in dispatchers:
            await nc.close()
