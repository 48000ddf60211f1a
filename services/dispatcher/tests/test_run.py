"""The dispatcher's `run` on a real NATS server: a start that fails half-way closes what it opened and a
failing stop step skips none of the others."""

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest

from zaphub_contracts import streams
from zaphub_dispatcher.app import run
from zaphub_dispatcher.lanes import Lanes
from zaphub_dispatcher.sends import PendingSend
from zaphub_dispatcher.settings import DispatcherSettings
from zaphub_runtime.bus import Bus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True


async def _tasks_left(before: set[asyncio.Task[object]]) -> list[str]:
    """Names of the tasks started since `before` that are still running a moment later."""
    left: list[asyncio.Task[object]] = []
    for _ in range(50):
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()]
        if not left:
            break
        await asyncio.sleep(0.02)
    return sorted(t.get_name() for t in left)


async def _eventually(check: Callable[[], bool], what: str, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def buses(monkeypatch: pytest.MonkeyPatch) -> list[Bus]:
    """Every bus the dispatcher connects, to look at afterwards."""
    opened: list[Bus] = []
    connect = Bus.connect

    async def recording(*args: object, **kwargs: object) -> Bus:
        bus = await connect(*args, **kwargs)  # type: ignore[arg-type]
        opened.append(bus)
        return bus

    monkeypatch.setattr(Bus, "connect", staticmethod(recording))
    return opened


@pytest.mark.parametrize("bucket", [streams.WEBHOOKS_BUCKET, streams.DISPATCH_BUCKET], ids=lambda b: b.name)
async def test_a_start_that_fails_half_way_closes_what_it_opened(
    nats_url: str, buses: list[Bus], monkeypatch: pytest.MonkeyPatch, bucket: streams.BucketSpec
) -> None:
    """A bucket that cannot be opened fails the start, and the bus, the metrics listener and every task
    started before it (the webhooks watch, when it was running) are closed."""
    kv = Bus.kv

    async def failing_kv(self: Bus, spec: streams.BucketSpec) -> object:
        if spec.name == bucket.name:
            raise ConnectionError(f"{spec.name} unavailable")
        return await kv(self, spec)

    monkeypatch.setattr(Bus, "kv", failing_kv)
    port = _free_port()
    before = asyncio.all_tasks()
    with pytest.raises(ConnectionError, match=bucket.name):
        await run(DispatcherSettings(nats_url=nats_url, metrics_port=port), asyncio.Event())
    assert [bus.nc.is_closed for bus in buses] == [True]
    assert not await _listening(port)
    assert await _tasks_left(before) == []


async def test_a_failing_drain_step_does_not_skip_the_others(
    nats_url: str, buses: list[Bus], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Lanes that fail to drain are logged; the directory, the metrics listener and the bus are still
    closed, and the dispatcher stops normally."""

    async def failing_drain(self: Lanes[PendingSend], timeout: float) -> None:
        raise RuntimeError("drain failed")

    monkeypatch.setattr(Lanes, "drain", failing_drain)
    caplog.set_level(logging.INFO, logger="zaphub_dispatcher.app")
    port = _free_port()
    before = asyncio.all_tasks()
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(run(DispatcherSettings(nats_url=nats_url, metrics_port=port), stop))
    await _eventually(lambda: "dispatcher running" in caplog.messages or dispatcher.done(), "the start")
    stop.set()
    await asyncio.wait_for(dispatcher, 30)  # returns: the failing steps do not fail the stop
    assert [bus.nc.is_closed for bus in buses] == [True]
    assert not await _listening(port)
    assert await _tasks_left(before) == []
