"""The ratelimiter as users of the bus see it: real nats-server, real `zaphub-ratelimiter` processes."""

import asyncio
import time
import uuid

import pytest
from nats.aio.client import Client

from zaphub_contracts import streams, subjects
from zaphub_contracts.ratelimit import (
    AcquireReply,
    AcquireRequest,
    RateLimitError,
    RateLimits,
    ReleaseReply,
    ReleaseRequest,
    UsageReply,
    UsageRequest,
)
from zaphub_runtime.codec import decode, encode
from zaphub_runtime.ratelimit_routes import RatelimiterRoutes

from .conftest import Replicas


async def acquire(nc: Client, tenant: uuid.UUID, token: uuid.UUID | None = None) -> AcquireReply:
    request = AcquireRequest(tenant_id=tenant, token_ids=[token or uuid.uuid4()])
    reply = await nc.request(subjects.RATELIMIT_ACQUIRE, encode(request), timeout=10)
    return decode(AcquireReply, reply.data)


async def release(nc: Client, tenant: uuid.UUID, token: uuid.UUID) -> ReleaseReply:
    request = ReleaseRequest(tenant_id=tenant, token_ids=[token])
    reply = await nc.request(subjects.RATELIMIT_RELEASE, encode(request), timeout=10)
    return decode(ReleaseReply, reply.data)


async def usage(nc: Client, tenant: uuid.UUID) -> dict[str, int]:
    reply = await nc.request(subjects.RATELIMIT_USAGE, encode(UsageRequest(tenant_id=tenant)), timeout=10)
    return {w.window: w.used for w in decode(UsageReply, reply.data).windows}


async def set_limits(nc: Client, tenant: uuid.UUID, limits: RateLimits) -> None:
    bucket = await nc.jetstream().key_value(streams.LIMITS_BUCKET.name)
    await bucket.put(str(tenant), encode(limits))


@pytest.fixture
async def two_replicas(replicas: Replicas) -> Replicas:
    await asyncio.gather(replicas.start(0), replicas.start(1))
    return replicas


async def test_denial_names_the_window_and_when_it_frees(two_replicas: Replicas, nc: Client) -> None:
    """With the minute full, a denial says `minute` and a retry_after within the minute."""
    tenant = uuid.uuid4()
    await set_limits(nc, tenant, RateLimits(per_minute=2))
    await asyncio.sleep(0.2)
    started = time.time()
    assert (await acquire(nc, tenant)).granted
    assert (await acquire(nc, tenant)).granted
    denied = await acquire(nc, tenant)
    assert not denied.granted
    assert denied.window == "minute"
    assert 60 - (time.time() - started) - 0.01 <= denied.retry_after <= 60


async def test_release_gives_the_token_back(two_replicas: Replicas, nc: Client) -> None:
    """A released token stops counting, whichever replica serves the release."""
    tenant = uuid.uuid4()
    await set_limits(nc, tenant, RateLimits(per_minute=2))
    await asyncio.sleep(0.2)
    first, second = uuid.uuid4(), uuid.uuid4()
    assert (await acquire(nc, tenant, first)).granted
    assert (await acquire(nc, tenant, second)).granted
    assert not (await acquire(nc, tenant)).granted
    assert (await release(nc, tenant, first)).released
    assert not (await release(nc, tenant, first)).released  # once only
    assert (await usage(nc, tenant))["minute"] == 1
    assert (await acquire(nc, tenant)).granted
    assert not (await acquire(nc, tenant)).granted


async def test_repeated_acquire_of_a_live_token_spends_nothing(two_replicas: Replicas, nc: Client) -> None:
    """Acquiring the same token id again is granted again and counted once."""
    tenant, token = uuid.uuid4(), uuid.uuid4()
    for _ in range(5):
        assert (await acquire(nc, tenant, token)).granted
    assert await usage(nc, tenant) == {"minute": 1, "hour": 1, "day": 1}
    # After a release the same token is a new send and spends again.
    assert (await release(nc, tenant, token)).released
    assert (await acquire(nc, tenant, token)).granted
    assert (await usage(nc, tenant))["minute"] == 1


async def test_a_run_of_tokens_is_granted_up_to_the_first_denial(two_replicas: Replicas, nc: Client) -> None:
    """Tokens asked for together are granted in order until a window is full, never one after a denial;
    a repeat of the request grants the same tokens again without spending, and they go back together."""
    tenant = uuid.uuid4()
    await set_limits(nc, tenant, RateLimits(per_minute=5))
    await asyncio.sleep(0.2)
    tokens = [uuid.uuid4() for _ in range(8)]

    async def ask(run: list[uuid.UUID]) -> AcquireReply:
        body = encode(AcquireRequest(tenant_id=tenant, token_ids=run))
        return decode(AcquireReply, (await nc.request(subjects.RATELIMIT_ACQUIRE, body, timeout=10)).data)

    first = await ask(tokens)
    assert (first.granted, first.window) == (5, "minute")
    assert 59 <= first.retry_after <= 60
    assert (await ask(tokens)).granted == 5  # the same five, live: nothing more spent
    assert (await usage(nc, tenant))["minute"] == 5
    body = encode(ReleaseRequest(tenant_id=tenant, token_ids=tokens))
    released = decode(ReleaseReply, (await nc.request(subjects.RATELIMIT_RELEASE, body, timeout=10)).data)
    assert released.released == 5  # the three never granted are not live
    assert (await usage(nc, tenant))["minute"] == 0


async def test_tenant_override_takes_effect_within_a_second(two_replicas: Replicas, nc: Client) -> None:
    """Writing a tenant's RateLimits to KV changes its decisions within a second; others keep defaults."""
    tenant, other = uuid.uuid4(), uuid.uuid4()
    for _ in range(3):
        assert (await acquire(nc, tenant)).granted
    await set_limits(nc, tenant, RateLimits(per_minute=1000, per_hour=3))
    deadline = time.monotonic() + 1.0
    while True:
        reply = await acquire(nc, tenant)
        if not reply.granted:
            break
        assert time.monotonic() < deadline, "override not applied within a second"
        await asyncio.sleep(0.02)
    assert reply.window == "hour"
    assert 3500 < reply.retry_after <= 3600
    assert (await acquire(nc, other)).granted


async def test_limit_zero_never_grants(two_replicas: Replicas, nc: Client) -> None:
    """A tenant limited to 0 per day is denied, told to come back after the window's length."""
    tenant = uuid.uuid4()
    await set_limits(nc, tenant, RateLimits(per_day=0))
    await asyncio.sleep(0.2)
    reply = await acquire(nc, tenant)
    assert (reply.granted, reply.window, reply.retry_after) == (False, "day", 86400)


@pytest.mark.parametrize(
    "body", [b"not json", b"{}", b'{"tenant_id": "nope", "token_ids": ["x"]}', b"[]"], ids=str
)
async def test_malformed_request_gets_an_error_reply(two_replicas: Replicas, nc: Client, body: bytes) -> None:
    """A malformed request is answered with a 400 error that names the problem; the service lives on."""
    reply = await nc.request(subjects.RATELIMIT_ACQUIRE, body, timeout=10)
    assert reply.headers is not None
    assert reply.headers["Nats-Service-Error-Code"] == "400"
    error = decode(RateLimitError, reply.data)
    assert error.error == "bad_request"
    assert "AcquireRequest" in error.detail
    assert (await acquire(nc, uuid.uuid4())).granted


async def test_a_tenant_is_decided_by_one_replica_until_it_dies(two_replicas: Replicas, nc: Client) -> None:
    """Routed requests of a tenant all reach the replica its routes pick; after kill -9 of that replica
    the next request is answered by the other one, and nothing granted is forgotten."""
    routes = RatelimiterRoutes(discover_every=3600)
    tenant = uuid.uuid4()
    await set_limits(nc, tenant, RateLimits(per_minute=7))
    answered: list[str] = []

    async def routed_acquire() -> AcquireReply:
        request = AcquireRequest(tenant_id=tenant, token_ids=[uuid.uuid4()])
        reply = await routes.request(nc, tenant, "acquire", request, 10)
        answered.append((reply.headers or {})[subjects.RATELIMIT_REPLICA_HEADER])
        return decode(AcquireReply, reply.data)

    for _ in range(40):  # queue-group answers teach the routes both replicas
        await acquire_via_queue_and_learn(nc, routes)
        if len(routes.replicas) == 2:
            break
    assert sorted(routes.replicas) == ["rl-0", "rl-1"]
    owner = routes.owner(tenant)
    assert all([(await routed_acquire()).granted for _ in range(4)])
    assert answered == [owner] * 4
    await two_replicas.kill(int(owner.removeprefix("rl-")))
    results = [(await routed_acquire()).granted for _ in range(4)]
    assert results == [True, True, True, False]  # 7 per minute, 4 granted before the kill
    assert set(answered[4:]) == {"rl-0", "rl-1"} - {owner}


async def acquire_via_queue_and_learn(nc: Client, routes: RatelimiterRoutes) -> None:
    body = encode(AcquireRequest(tenant_id=uuid.uuid4(), token_ids=[uuid.uuid4()]))
    routes.heard((await nc.request(subjects.RATELIMIT_ACQUIRE, body, timeout=10)).headers)
