"""Attack: tenant A fills its ten webhooks with endpoints that hold every POST as long as they can (a
TCP black hole that never answers, a server that drip-feeds its answer a byte at a time), and floods
them with events, to take the dispatchers' delivery slots and pending window from everyone else.
Defence: a per-tenant cap on POSTs in flight, a total deadline per POST, a breaker per endpoint, and
waiting deliveries held on a retry consumer of their own, looked at again only as fast as the tenant's
slots free; tenant B's deliveries arrive on time."""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import nats
import pytest
from e2e.client import new_tenant
from e2e.receiver import Receiver
from e2e.test_webhooks import sent_for
from security.webhook_attacks import BlackHole, DripFeed, create_webhook, stack

from zaphub_contracts import streams
from zaphub_devstack.testing import Stack

TO = "+5511988887777"
ON_TIME = 5.0  # seconds from B's send being accepted to its message.sent reaching B's receiver


@pytest.fixture(scope="module")
async def allowing_loopback(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir = tmp_path_factory.mktemp("black-hole")
    async with stack(data_dir, ZAPHUB_EGRESS_ALLOW="127.0.0.1") as started:
        yield started


async def test_a_black_holed_backlog_is_looked_at_as_fast_as_its_slots_free(allowing_loopback: Stack) -> None:
    """Attack: a backlog of deliveries behind black-holed endpoints, so that the dispatchers re-read it
    over and over on the cores every tenant shares (looked at again every 1-3 s, 8,000 waiting
    deliveries were 70,000 re-reads in 20 s). Defence: while its POSTs fill its slots, a tenant's
    waiting deliveries come back one after the other as fast as a slot can free (webhook_pacing.py).
    Runs first in this module, so the bus holds no other tenant's backlog."""
    async with httpx.AsyncClient(base_url=allowing_loopback.api_url, timeout=30) as http, BlackHole() as hole:
        tenant = await new_tenant(http, allowing_loopback.admin_key, "backlog")
        for n in range(2):
            assert (await create_webhook(tenant, f"{hole.url}/{n}")).status_code == 201
        session = await tenant.connected_session()
        await asyncio.gather(*(tenant.send_text(session["id"], TO, f"backlog {n}") for n in range(20)))
        nc = await nats.connect(allowing_loopback.nats_url)
        try:
            spec = streams.WEBHOOK_RETRY_CONSUMER

            async def waiting() -> tuple[int, int]:
                info = await nc.jetstream().consumer_info(spec.stream, spec.durable)
                return info.num_ack_pending + info.num_pending, info.delivered.consumer_seq

            # Each of the 20 sends is 3 events (sent, delivered, read), to 2 webhooks: 8 POSTs held.
            async with asyncio.timeout(20):
                while (await waiting())[0] < 100:  # noqa: ASYNC110 (polling the server)
                    await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # the first look of each, on its way onto the retry subject
            held, before = await waiting()
            await asyncio.sleep(8.0)  # shorter than a POST's deadline: the 8 held POSTs stay held
            _, after = await waiting()
        finally:
            await nc.close()
        # Looked at again every 1-3 s, the backlog would be read some 4 times over in those 8 s.
        assert after - before < held, f"{after - before} re-looks of {held} waiting deliveries in 8 s"


async def test_black_hole_and_drip_feed_webhooks_do_not_delay_another_tenant(
    allowing_loopback: Stack,
) -> None:
    """With A's ten webhooks stalling every POST under a flood of events, each of B's deliveries still
    arrives within a few seconds of its send."""
    api = allowing_loopback.api_url
    async with (
        httpx.AsyncClient(base_url=api, timeout=30) as http,
        BlackHole() as hole,
        DripFeed() as drip,
        Receiver() as healthy,
    ):
        a = await new_tenant(http, allowing_loopback.admin_key, "attacker")
        b = await new_tenant(http, allowing_loopback.admin_key, "bystander")
        for n in range(10):
            target = hole if n % 2 else drip
            created = await create_webhook(a, f"{target.url}/{n}")
            assert created.status_code == 201, created.text
        assert (await create_webhook(b, healthy.url, ["message.sent"])).status_code == 201
        a_session, b_session = await asyncio.gather(a.connected_session(), b.connected_session())
        async with asyncio.timeout(40):
            # A's flood: every event of it becomes ten stalled deliveries.
            await asyncio.gather(*(a.send_text(a_session["id"], TO, f"flood {n}") for n in range(40)))
            await _until(lambda: hole.connections >= 4 and drip.connections >= 4)
            late, took_all = [], []
            for n in range(8):
                accepted = await b.send_text(b_session["id"], TO, f"on time {n}")
                started = time.monotonic()
                await healthy.wait_for(sent_for(accepted["id"]), 15, f"B's delivery {n}")
                took_all.append(round(time.monotonic() - started, 2))
                if (took := time.monotonic() - started) > ON_TIME:
                    late.append((n, round(took, 1)))
                await asyncio.sleep(1.0)
        assert late == [], f"B's deliveries arrived late (number, seconds): {late}; all: {took_all}"
        # The attack was real: A's endpoints were held, and its POSTs stayed within its own cap.
        assert hole.connections >= 4 and drip.connections >= 4


async def _until(check: object, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "A's endpoints were never reached"
        await asyncio.sleep(0.1)
