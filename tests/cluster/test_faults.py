"""A 3-node JetStream cluster losing nodes, and every process restarted in turn, under a steady send
load across three tenants and six sessions, with two of each service (API, dispatcher, ratelimiter,
session-host), all real processes.

The simulator's `delivered.jsonl` is the oracle for "handed to WhatsApp exactly once", the
ratelimiter's grant log for "rate limits stay exact", and ZAPHUB_EVT's history for "no re-scan".
"""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from cluster.faults import (
    CLUSTER,
    assert_sessions_connected_without_qr,
    connect,
    kill_leader,
    tenants_with_sessions,
)
from e2e.client import Tenant, eventually
from e2e.load import DONE, SendLoad, assert_each_handed_over_once
from nats.aio.client import Client

from bench.ratelimit_oracle import grants_of, overshoot
from zaphub_contracts import streams
from zaphub_contracts.ratelimit import RateLimits
from zaphub_devstack.jetstream import kv_stream, local_streams, stream_leader
from zaphub_devstack.testing import Stack

pytestmark = pytest.mark.slow
RATE = 25.0  # messages a second over all sessions: a few hundred per test
# Seconds for the backlog to be sent and its statuses projected: the first test of a full suite run
# drains ~900 messages on 2 busy cores, and once needed more than 120 s after all were on the wire.
DRAIN = 240.0


@dataclass
class Cluster:
    stack: Stack
    nc: Client
    http: httpx.AsyncClient
    targets: list[tuple[Tenant, str]]


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    """The one clustered stack of this module, with three tenants of two connected sessions each."""
    two_of_each = ("API_REPLICAS", "DISPATCHERS", "RATELIMITERS", "SESSION_HOSTS")
    env = {**CLUSTER, **{f"ZAPHUB_{count}": "2" for count in two_of_each}}
    async with Stack(tmp_path_factory.mktemp("cluster"), env=env) as stack:
        nc = await connect(stack)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            targets = await tenants_with_sessions(http, stack, tenants=3, sessions=2)
            yield Cluster(stack, nc, http, targets)
        await nc.close()


def _all_accepted(load: SendLoad) -> None:
    """The API took every send: losing a NATS node is no reason to refuse one (the outbox publishes)."""
    refused = [a for a in load.answers if a.status != 202]
    assert not refused, refused[:3]


async def test_killing_the_leaders_of_cmd_evt_and_kv_loses_nothing_and_sends_nothing_twice(
    cluster: Cluster,
) -> None:
    """kill -9 of the node leading ZAPHUB_CMD, then ZAPHUB_EVT, then the leases and sent-ids buckets:
    every accepted message reaches WhatsApp once and ends sent, and no session is scanned again."""
    stack, nc = cluster.stack, cluster.nc
    since = datetime.now(UTC)
    killed = []
    async with SendLoad(stack.api_urls, cluster.targets, rate=RATE) as load:
        await asyncio.sleep(2)
        buckets = (streams.LEASES_BUCKET, streams.SENT_BUCKET)
        for stream in ("ZAPHUB_CMD", "ZAPHUB_EVT", *(kv_stream(bucket.name) for bucket in buckets)):
            killed.append(await kill_leader(stack, nc, stream))
            await asyncio.sleep(1)
        await asyncio.sleep(2)
    _all_accepted(load)
    await load.wait_done(timeout=DRAIN, data_dir=stack.data_dir)
    assert_each_handed_over_once(stack.data_dir, load.accepted)
    await assert_sessions_connected_without_qr(nc, cluster.targets, since)


async def test_a_host_and_a_dispatcher_killed_with_the_cmd_leader_lose_nothing(cluster: Cluster) -> None:
    """The node leading ZAPHUB_CMD, session-host-1 and dispatcher-1 killed with -9 at once: sessions
    fail over with their auth_data (no QR), and every accepted message is sent once."""
    stack, nc = cluster.stack, cluster.nc
    since = datetime.now(UTC)
    async with SendLoad(stack.api_urls, cluster.targets, rate=RATE) as load:
        await asyncio.sleep(2)
        leader = await stream_leader(nc, "ZAPHUB_CMD")
        old = {name: stack.kill(name) for name in (f"nats-{leader}", "session-host-1", "dispatcher-1")}
        for name, pid in old.items():
            await stack.wait_restarted(name, pid, within=60)
        await asyncio.sleep(3)
    _all_accepted(load)
    await load.wait_done(timeout=DRAIN, data_dir=stack.data_dir)
    assert_each_handed_over_once(stack.data_dir, load.accepted)
    await assert_sessions_connected_without_qr(nc, cluster.targets, since)


async def test_rate_limits_stay_exact_through_the_loss_of_the_grant_logs_leader(cluster: Cluster) -> None:
    """A tenant limited to 20 a minute sends 40 while the node leading ZAPHUB_RATELIMIT is killed:
    the grant log shows exactly 20 tokens in the window, none beyond the limit (both ratelimiter
    replicas decide for it), and the 20 go out once each."""
    stack, nc = cluster.stack, cluster.nc
    limits = RateLimits(per_minute=20, per_hour=1000, per_day=10000)
    response = await cluster.http.post(
        "/api/v1/tenants",
        json={"name": "limited", "rate_limits": limits.model_dump()},
        headers={"Authorization": f"Bearer {stack.admin_key}"},
    )
    assert response.status_code == 201, response.text
    tenant = Tenant(cluster.http, response.json())
    session = (await tenant.connected_session("limited", timeout=60))["id"]
    async with SendLoad(stack.api_urls, [(tenant, session)], rate=10) as load:
        await asyncio.sleep(1)
        await kill_leader(stack, nc, "ZAPHUB_RATELIMIT")
        while len(load.answers) < 40:  # noqa: ASYNC110 - the load's own pace decides
            await asyncio.sleep(0.1)
    _all_accepted(load)
    node = stack.nats_servers[0]

    async def granted() -> list[int] | None:
        times = await grants_of(node, uuid.UUID(tenant.id))
        return times if len(times) >= limits.per_minute else None

    times = await eventually(granted, 60, f"{limits.per_minute} tokens granted")
    assert overshoot(times, limits) == 0
    assert len(times) == limits.per_minute

    async def sent_ones() -> list[str] | None:
        sent = [m for m in load.accepted if (await tenant.message(m))["status"] in DONE]
        return sent if len(sent) >= limits.per_minute else None

    # A granted send can still be on its way: its host may be waiting out the same election.
    sent = await eventually(sent_ones, 30, f"the {limits.per_minute} granted sends to be sent")
    assert len(sent) == limits.per_minute
    assert_each_handed_over_once(stack.data_dir, sent)


async def test_one_node_down_the_cluster_serves_and_the_node_catches_up_when_back(cluster: Cluster) -> None:
    """With the node leading ZAPHUB_CMD held down for 15 s, messages accepted meanwhile are sent; when
    it is back, its own copies of ZAPHUB_CMD and ZAPHUB_EVT catch up with the cluster's."""
    stack, nc = cluster.stack, cluster.nc
    leader = await stream_leader(nc, "ZAPHUB_CMD")
    async with SendLoad(stack.api_urls, cluster.targets, rate=RATE) as load:
        async with stack.down(f"nats-{leader}"):
            await asyncio.sleep(15)
            while_down = list(load.accepted)
            assert len(while_down) > 5 * RATE
            # Sent with the node still down:
            sent_while_down = await load.wait_done(timeout=60, data_dir=stack.data_dir)
        await asyncio.sleep(2)
    assert set(while_down) <= set(sent_while_down)
    _all_accepted(load)
    await load.wait_done(timeout=DRAIN, data_dir=stack.data_dir)
    assert_each_handed_over_once(stack.data_dir, load.accepted)

    js = nc.jetstream()
    wanted = {name: (await js.stream_info(name)).state.last_seq for name in ("ZAPHUB_CMD", "ZAPHUB_EVT")}
    [node] = [n for n in stack.nats_nodes() if n.name == leader]

    async def caught_up() -> bool:
        local = await local_streams(node.monitor_url)
        return all(name in local and local[name].last_seq >= seq for name, seq in wanted.items())

    await eventually(caught_up, 30, f"{leader} to hold ZAPHUB_CMD and ZAPHUB_EVT up to {wanted}")


ROLLING_ORDER = (
    "nats-n1", "nats-n2", "nats-n3",
    "ratelimiter-1", "ratelimiter-2",
    "dispatcher-1", "dispatcher-2",
    "session-host-1", "session-host-2",
    "api", "api-2",
)  # fmt: skip


async def _serving(cluster: Cluster, name: str) -> None:
    """Until the restarted instance is back at work: an API answers /ready, a host is listed live."""
    stack = cluster.stack
    if name.startswith("api"):
        url = stack.api_urls[0 if name == "api" else int(name.split("-")[1]) - 1]

        async def ready() -> bool:
            try:
                return (await cluster.http.get(f"{url}/ready")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, 60, f"{name} to be ready")
    elif name.startswith("session-host"):
        admin = {"Authorization": f"Bearer {stack.admin_key}"}

        async def listed() -> bool:
            hosts = (await cluster.http.get("/api/v1/hosts", headers=admin)).json()
            return name in {h["host_id"] for h in hosts}

        await eventually(listed, 60, f"{name} to be a live host again")


async def test_a_rolling_restart_of_every_process_loses_nothing_and_sends_nothing_twice(
    cluster: Cluster,
) -> None:
    """Each NATS node, ratelimiter, dispatcher, session-host and API process in turn gets SIGTERM, as
    a rolling upgrade does, and the next one only once it is back: the API never answers 500, every
    accepted message goes out once, and sessions move between hosts without a QR."""
    stack, nc = cluster.stack, cluster.nc
    since = datetime.now(UTC)
    async with SendLoad(stack.api_urls, cluster.targets, rate=RATE) as load:
        for name in ROLLING_ORDER:
            old = stack.pids()[name]
            os.kill(old, signal.SIGTERM)
            await stack.wait_restarted(name, old, within=90)
            await _serving(cluster, name)
    _all_accepted(load)  # one API replica always answers (SendLoad moves on when one does not)
    await load.wait_done(timeout=DRAIN, data_dir=stack.data_dir)
    assert_each_handed_over_once(stack.data_dir, load.accepted)
    await assert_sessions_connected_without_qr(nc, cluster.targets, since)
