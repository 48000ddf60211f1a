"""Fixtures of the session-host tests: hosts on the simulator and a client, on the shared `nats_url`."""

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import TypeAdapter

from zaphub_contracts import subjects
from zaphub_contracts.commands import SendMessage
from zaphub_contracts.events import EventBase, parse_event
from zaphub_contracts.host import HostOp, HostReply, SendRun, SendRunReply
from zaphub_contracts.sessions import DesiredSession
from zaphub_contracts.streams import SESSIONS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_session_host.app import SessionHost
from zaphub_session_host.settings import HostSettings, TransportName

HOST_REPLY: TypeAdapter[Any] = TypeAdapter(HostReply)


class Events:
    """Every event published while the test runs, as contract models."""

    def __init__(self) -> None:
        self.items: list[EventBase] = []

    async def on_msg(self, msg: Msg) -> None:
        self.items.append(parse_event(msg.data))

    def of(self, short: str, session_id: UUID | None = None) -> list[EventBase]:
        return [
            e for e in self.items if e.short == short and (session_id is None or e.sessionid == session_id)
        ]


class Client_:
    """What a test drives the hosts with: desired state, host requests, and the events seen."""

    def __init__(self, bus: Bus, events: Events) -> None:
        self.bus = bus
        self.events = events

    async def desire(self, tenant_id: UUID, session_id: UUID) -> None:
        kv = await self.bus.kv(SESSIONS_BUCKET)
        desired = DesiredSession(
            tenant_id=tenant_id, session_id=session_id, name="test", requested_at=datetime.now(UTC)
        )
        await kv.put(desired.key, encode(desired))

    async def undesire(self, tenant_id: UUID, session_id: UUID) -> None:
        kv = await self.bus.kv(SESSIONS_BUCKET)
        await kv.delete(f"{tenant_id}.{session_id}")

    async def request(self, session_id: UUID, op: str, payload: Any, timeout: float = 5.0) -> Any:
        reply = await self.bus.request(subjects.host(session_id, op), payload, timeout=timeout)
        return HOST_REPLY.validate_json(reply.data)

    async def send(
        self, session_id: UUID, *commands: SendMessage, timeout: float = 5.0, seconds: float = 1.0
    ) -> list[HostReply]:
        """The results of one `send` request carrying `commands` as a run."""
        tenant = commands[0].tenant_id
        run = SendRun(tenant_id=tenant, session_id=session_id, commands=list(commands), seconds=seconds)
        reply = await self.bus.request(subjects.host(session_id, HostOp.SEND), run, timeout=timeout)
        return SendRunReply.model_validate_json(reply.data).results

    async def send_one(self, session_id: UUID, command: SendMessage, timeout: float = 5.0) -> HostReply:
        (result,) = await self.send(session_id, command, timeout=timeout)
        return result

    @property
    def nc(self) -> Client:
        return self.bus.nc


async def eventually(check: Callable[[], Any], timeout: float = 10.0, step: float = 0.05) -> Any:
    """Wait until `check()` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


@pytest.fixture
async def client(nats_url: str) -> AsyncIterator[Client_]:
    bus = await Bus.connect(nats_url, name="test-client", source="/test")
    await bus.ensure_streams()
    events = Events()
    await bus.nc.subscribe(subjects.EVT_ALL, cb=events.on_msg)
    yield Client_(bus, events)
    await bus.close()


HostFactory = Callable[..., Awaitable[SessionHost]]


@pytest.fixture
async def start_host(nats_url: str, tmp_path: Path) -> AsyncIterator[HostFactory]:
    """Start sim hosts sharing one data dir (so auth_data is shared, as with S3); all stopped at the end."""
    started: list[SessionHost] = []

    async def start(name: str | None = None, **overrides: Any) -> SessionHost:
        settings = HostSettings(
            nats_url=nats_url,
            data_dir=tmp_path / "data",
            instance_id=name or f"host-{uuid4().hex[:6]}",
            transport=TransportName.SIM,
            sim_pair_delay=0.2,
            lease_ttl=2.0,
            reconcile_interval=0.1,
            claim_stagger=0.3,
            **overrides,
        )
        host = SessionHost(settings)
        await host.start()
        started.append(host)
        return host

    yield start
    for host in started:
        await asyncio.wait_for(host.stop(), 30)
