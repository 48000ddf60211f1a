"""The key cache and the failure throttle, in process: bounded, least recently used first out."""

import uuid
from typing import Any

from zaphub_api.auth import FailureThrottle, KeyRing, new_key


class CountingPool:
    """Stands in for asyncpg's pool: every key is a tenant's; counts the lookups."""

    def __init__(self) -> None:
        self.queries = 0
        self.tenant = uuid.uuid4()

    async def fetchval(self, *_: Any) -> uuid.UUID:
        self.queries += 1
        return self.tenant


async def test_key_cache_evicts_the_least_recently_used_key_only() -> None:
    """With room for two keys, a third evicts the one used least recently, not the whole cache."""
    pool = CountingPool()
    ring = KeyRing(pool, "zh_admin_" + "x" * 40, max_cached=2)  # type: ignore[arg-type]
    a, b, c = (new_key().secret for _ in range(3))
    await ring.resolve(a)
    await ring.resolve(b)
    await ring.resolve(a)  # a is now the most recent
    await ring.resolve(c)  # evicts b
    assert pool.queries == 3
    await ring.resolve(a)
    await ring.resolve(c)
    assert pool.queries == 3
    await ring.resolve(b)
    assert pool.queries == 4


def test_failure_throttle_remembers_a_bounded_number_of_addresses() -> None:
    """An address past its burst waits; the oldest addresses are forgotten beyond `max_clients`."""
    throttle = FailureThrottle(burst=2, per_second=0.01, max_clients=3)
    throttle.failed("a")
    assert throttle.retry_after("a") == 0
    throttle.failed("a")
    assert throttle.retry_after("a") > 0
    for address in ("b", "c", "d"):
        throttle.failed(address)
    assert throttle.retry_after("a") == 0  # forgotten: a flood of addresses cannot grow memory
