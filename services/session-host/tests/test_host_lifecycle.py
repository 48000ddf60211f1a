"""One host's start and stop: a start that fails half-way closes what it opened, a failing stop step
skips nothing after it, and a reconciler that dies fails the host."""

import asyncio
import socket
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from nats.js.errors import KeyNotFoundError

from zaphub_contracts.streams import HOSTS_BUCKET, LEASES_BUCKET
from zaphub_runtime.lifecycle import BackgroundTaskDied
from zaphub_session_host.app import SessionHost
from zaphub_session_host.auth_store import AuthSaver, AuthStoreError, LocalDirAuthStore
from zaphub_session_host.reconciler import Reconciler
from zaphub_session_host.settings import HostSettings, TransportName
from zaphub_session_host.transport.sim import SimTransport

from .conftest import Client_, eventually


class ClosedSim(SimTransport):
    """The simulator, noting whether the host closed it."""

    closed = False

    async def close(self) -> None:
        await super().close()
        self.closed = True


class UnreachableStore(LocalDirAuthStore):
    async def ping(self) -> None:
        raise AuthStoreError("auth store unreachable")


def _settings(nats_url: str, data_dir: Path, **overrides: Any) -> HostSettings:
    return HostSettings(
        nats_url=nats_url,
        data_dir=data_dir,
        instance_id=f"host-{uuid4().hex[:6]}",
        transport=TransportName.SIM,
        sim_pair_delay=0.2,
        reconcile_interval=0.1,
        claim_stagger=0.0,
        **overrides,
    )


def _started_since(before: set[asyncio.Task[Any]]) -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() - before if t is not asyncio.current_task() and not t.done()}


async def _nothing_left_running(before: set[asyncio.Task[Any]]) -> None:
    try:
        await eventually(lambda: not _started_since(before), timeout=5)
    except AssertionError:
        raise AssertionError(
            f"still running: {sorted(t.get_name() for t in _started_since(before))}"
        ) from None


async def test_a_start_refused_by_the_auth_store_closes_the_transport(nats_url: str, tmp_path: Path) -> None:
    """The auth store failing its ping fails the start, and the transport started before it is closed."""
    before = asyncio.all_tasks()
    transport = ClosedSim(tmp_path)
    store = UnreachableStore(tmp_path / "auth")
    host = SessionHost(_settings(nats_url, tmp_path), transport=transport, auth_store=store)
    with pytest.raises(AuthStoreError):
        await host.start()
    assert transport.closed
    await _nothing_left_running(before)


async def test_a_start_that_fails_after_connecting_closes_all_it_opened(
    nats_url: str, tmp_path: Path
) -> None:
    """A step late in the start failing (the metrics port is taken) leaves no task running: the bus,
    the event publisher, the auth saver and the KV watches it had started are closed, and the transport."""
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        before = asyncio.all_tasks()
        transport = ClosedSim(tmp_path)
        settings = _settings(nats_url, tmp_path, metrics_port=taken.getsockname()[1])
        with pytest.raises(OSError, match="in use"):
            await SessionHost(settings, transport=transport).start()
    assert transport.closed
    await _nothing_left_running(before)


async def test_a_failing_stop_step_still_releases_leases_and_closes_the_bus(
    client: Client_, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auth saver raising as it closes does not skip the rest of the stop: the session's lease and
    the host's heartbeat are gone at once (not by TTL), and nothing of the host is left running."""
    before = asyncio.all_tasks()
    transport = ClosedSim(tmp_path)
    host = SessionHost(_settings(nats_url, tmp_path, lease_ttl=30.0), transport=transport)
    await host.start()
    tenant, session = uuid4(), uuid4()
    await client.desire(tenant, session)
    await eventually(lambda: client.events.of("session.connected", session))
    leases, hosts = await client.bus.kv(LEASES_BUCKET), await client.bus.kv(HOSTS_BUCKET)
    assert (await leases.get(str(session))).value

    close = AuthSaver.close

    async def close_then_fail(saver: AuthSaver, timeout: float) -> None:
        await close(saver, timeout)
        raise RuntimeError("auth store connection reset while closing")

    monkeypatch.setattr(AuthSaver, "close", close_then_fail)
    await asyncio.wait_for(host.stop(), 30)
    with pytest.raises(KeyNotFoundError):
        await leases.get(str(session))
    with pytest.raises(KeyNotFoundError):
        await hosts.get(host.host_id)
    assert transport.closed
    await _nothing_left_running(before)


async def test_a_reconciler_that_dies_fails_the_host(
    nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconciler's loop ending on its own stops the host, which drains and raises
    BackgroundTaskDied from run(): the process exits non-zero for its supervisor."""

    async def dies(_reconciler: Reconciler, *_args: object) -> None:
        await asyncio.sleep(0.2)
        raise RuntimeError("reconciler bug")

    monkeypatch.setattr(Reconciler, "run", dies)
    transport = ClosedSim(tmp_path)
    host = SessionHost(_settings(nats_url, tmp_path), transport=transport)
    with pytest.raises(BackgroundTaskDied, match="reconciler"):
        await asyncio.wait_for(host.run(asyncio.Event()), 15)
    assert transport.closed
