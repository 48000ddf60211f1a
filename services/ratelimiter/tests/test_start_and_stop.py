"""A ratelimiter replica in this process, on a real NATS server: a start that fails half-way closes what
it opened, and a failing stop step skips none of the others."""

import asyncio
import logging
from collections.abc import Callable

import pytest
from nats.aio.client import Client

from zaphub_contracts import streams
from zaphub_devstack.inprocess import eventually, listening, tasks_left
from zaphub_devstack.ports import free_port
from zaphub_ratelimiter.app import Ratelimiter
from zaphub_ratelimiter.limits import TenantLimits
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.bus import Bus


def _fail_the_limits_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    kv = Bus.kv

    async def failing(self: Bus, spec: streams.BucketSpec) -> object:
        if spec.name == streams.LIMITS_BUCKET.name:
            raise ConnectionError("limits bucket unavailable")
        return await kv(self, spec)

    monkeypatch.setattr(Bus, "kv", failing)


def _fail_the_subscriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The request subjects cannot be subscribed (the limits watch, started before, still can)."""
    subscribe = Client.subscribe

    async def failing(self: Client, subject: str, *args: object, **kwargs: object) -> object:
        if subject.startswith("zaphub.v1.ratelimit"):
            raise ConnectionError("connection lost while subscribing")
        return await subscribe(self, subject, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Client, "subscribe", failing)


@pytest.mark.parametrize("failure", [_fail_the_limits_bucket, _fail_the_subscriptions], ids=["kv", "sub"])
async def test_a_start_that_fails_half_way_closes_what_it_opened(
    nats_url: str, monkeypatch: pytest.MonkeyPatch, failure: Callable[[pytest.MonkeyPatch], None]
) -> None:
    """The start fails with the error; the metrics listener is closed and no task is left running:
    neither the NATS connection's nor the limits watch (when it was started before)."""
    failure(monkeypatch)
    port = free_port()
    before = asyncio.all_tasks()
    with pytest.raises(ConnectionError):
        await Ratelimiter(RatelimiterSettings(nats_url=nats_url, metrics_port=port)).serve()
    assert not await listening(port)
    assert await tasks_left(before) == []


async def test_a_failing_stop_step_does_not_skip_the_others(
    nats_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stop step that raises is logged, and the replica still stops normally: the metrics listener is
    closed and no task is left running (the NATS connection is closed)."""
    stop_limits = TenantLimits.stop

    async def stop_then_fail(self: TenantLimits) -> None:
        await stop_limits(self)
        raise RuntimeError("limits watch did not stop cleanly")

    monkeypatch.setattr(TenantLimits, "stop", stop_then_fail)
    caplog.set_level(logging.INFO, logger="zaphub_ratelimiter.app")
    port = free_port()
    before = asyncio.all_tasks()
    replica = Ratelimiter(RatelimiterSettings(nats_url=nats_url, metrics_port=port))
    serving = asyncio.create_task(replica.serve())
    await eventually(lambda: "ratelimiter serving" in caplog.messages or serving.done(), "the start")
    replica.stop()
    await asyncio.wait_for(serving, 30)  # returns: the failing step does not fail the stop
    assert not await listening(port)
    assert await tasks_left(before) == []
