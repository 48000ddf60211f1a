"""Breaking a clustered stack on purpose, and reading what it did: the NATS node leading a stream
killed with -9, and the sessions' history in ZAPHUB_EVT afterwards."""

import contextlib
import uuid
from datetime import datetime

import httpx
import nats
import nats.errors
from e2e.client import Tenant, eventually, new_tenant
from e2e.load import UNLIMITED
from nats.aio.client import Client

from zaphub_contracts import subjects
from zaphub_contracts.events import EventBase, parse_event
from zaphub_devstack.jetstream import stream_leader
from zaphub_devstack.testing import Stack

# Three nats-servers, R3 streams and buckets (the supervisor's default for a cluster), the simulator.
CLUSTER = {"ZAPHUB_NATS_CLUSTER": "3", "ZAPHUB_SIM_PAIR_DELAY": "0.3", **UNLIMITED}


async def connect(stack: Stack) -> Client:
    """A client that knows every node and never gives up reconnecting."""
    return await nats.connect(
        stack.nats_servers, max_reconnect_attempts=-1, reconnect_time_wait=0.2, connect_timeout=2
    )


async def tenants_with_sessions(
    http: httpx.AsyncClient, stack: Stack, tenants: int, sessions: int
) -> list[tuple[Tenant, str]]:
    """`tenants` new tenants with `sessions` connected sessions each, as (tenant, session id)."""
    targets = []
    for t in range(tenants):
        tenant = await new_tenant(http, stack.admin_key, f"tenant-{t}")
        for s in range(sessions):
            targets.append((tenant, (await tenant.connected_session(f"s{s}", timeout=60))["id"]))
    return targets


async def kill_leader(stack: Stack, nc: Client, stream: str) -> str:
    """kill -9 the node leading `stream` and keep it down until another node leads the stream (left
    to the supervisor, a node back within the election timeout may simply lead again); then let it
    start again. The killed node's name."""
    leader = await stream_leader(nc, stream)

    async def another() -> bool:
        with contextlib.suppress(TimeoutError):
            return await stream_leader(nc, stream, within=2) != leader
        return False

    async with stack.down(f"nats-{leader}"):
        await eventually(another, 30, f"a new leader of {stream} after {leader} was killed")
    return leader


async def events_since(nc: Client, tenant: Tenant, short: str, since: datetime) -> list[EventBase]:
    """The tenant's `short` events (`session.qr`, ...) stored in ZAPHUB_EVT at or after `since`."""
    sub = await nc.jetstream().subscribe(subjects.tenant_events(uuid.UUID(tenant.id)), ordered_consumer=True)
    found: list[EventBase] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            event = parse_event(msg.data)
            if event.short == short and event.time >= since:
                found.append(event)
    finally:
        await sub.unsubscribe()
    return found


async def assert_sessions_connected_without_qr(
    nc: Client, targets: list[tuple[Tenant, str]], since: datetime
) -> None:
    """Every session is connected now, and none showed a QR code (a re-scan) since `since`."""
    for tenant, session_id in targets:

        async def connected(tenant: Tenant = tenant, session_id: str = session_id) -> bool:
            return (await tenant.session(session_id))["status"] == "connected"

        await eventually(connected, 30, f"session {session_id} to be connected")
    for tenant in {id(t): t for t, _ in targets}.values():
        qrs = await events_since(nc, tenant, "session.qr", since)
        assert not qrs, f"{len(qrs)} QR codes shown after the faults: a session had to be scanned again"
