"""Attack on fair sharing: tenant A's endpoint fails every POST slowly while A floods events, so
most of its deliveries must wait for one of A's few POST slots. Defence: a delivery that waits for a
slot is moved to the retry consumer without an attempt (attempt numbers count only real POSTs), and
the consumer of new deliveries, which every tenant shares, keeps its pending window free."""

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from e2e.client import Tenant, eventually, new_tenant
from security.webhook_attacks import Listener, create_webhook, stack

from zaphub_contracts import streams
from zaphub_devstack.testing import Stack

TO = "+5511988887777"
SENDS = 40
CAP = 2  # A's POSTs in flight
ATTEMPTS = 2
PENDING_BOUND = 10  # of the 40 deliveries: the few in flight or just fetched, never the waiting ones


@pytest.fixture(scope="module")
async def few_slots(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    env = {
        "ZAPHUB_EGRESS_ALLOW": "127.0.0.1",
        "ZAPHUB_WEBHOOK_TENANT_CONCURRENCY": str(CAP),
        "ZAPHUB_WEBHOOK_MAX_ATTEMPTS": str(ATTEMPTS),
        "ZAPHUB_WEBHOOK_BREAKER_FAILURES": "100000",  # the slot cap alone makes deliveries wait
    }
    async with stack(tmp_path_factory.mktemp("attempts"), **env) as started:
        yield started


class SlowFailure(Listener):
    """Answers every POST with a 500 after 0.3 s; keeps each POST's delivery id and attempt header."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[tuple[str, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
            lowered = {k.lower(): v for k, v in headers.items()}
            await reader.readexactly(int(lowered.get("content-length", "0")))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.posts.append((lowered["zaphub-delivery-id"], int(lowered["zaphub-attempt"])))
            await asyncio.sleep(0.3)
            self.in_flight -= 1
            writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()


async def finished(tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    async def all_failed() -> list[dict[str, Any]] | None:
        response = await tenant.http.get(
            f"/api/v1/webhooks/{webhook_id}/deliveries", params={"limit": 100}, headers=tenant.headers
        )
        assert response.status_code == 200, response.text
        found = response.json()
        done = len(found) == SENDS and all(d["status"] == "failed" for d in found)
        return found if done else None

    return await eventually(all_failed, 90, f"{SENDS} deliveries to fail after {ATTEMPTS} attempts")


async def test_webhook_attempts_count_only_real_posts_and_waiting_leaves_the_shared_window(
    few_slots: Stack,
) -> None:
    """Each of A's deliveries logs attempts 1 and 2, exactly the POSTs its endpoint received (waiting
    for a slot is no attempt); the shared delivery consumer's pending stays at a few meanwhile."""
    async with httpx.AsyncClient(base_url=few_slots.api_url, timeout=30) as http, SlowFailure() as endpoint:
        a = await new_tenant(http, few_slots.admin_key, "attacker")
        created = await create_webhook(a, endpoint.url, ["message.sent"])
        assert created.status_code == 201, created.text
        session = await a.connected_session()
        nc = await nats.connect(few_slots.nats_url)
        pending: list[int] = []

        async def watch() -> None:
            while True:
                info = await nc.jetstream().consumer_info(
                    streams.WEBHOOKS.name, streams.WEBHOOK_DELIVERY_CONSUMER.durable
                )
                pending.append(info.num_ack_pending)
                await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(a.send_text(session["id"], TO, f"flood {n}") for n in range(SENDS)))
            deliveries = await finished(a, created.json()["id"])
        finally:
            watcher.cancel()
            await nc.close()

    logged = {d["id"]: sorted(x["attempt"] for x in d["attempt_log"]) for d in deliveries}
    assert all(attempts == list(range(1, ATTEMPTS + 1)) for attempts in logged.values()), logged
    posted = collections.defaultdict(list)
    for delivery_id, attempt in endpoint.posts:
        posted[delivery_id].append(attempt)
    assert {k: sorted(v) for k, v in posted.items()} == logged  # one logged attempt per real POST
    assert all(d["attempts"] == ATTEMPTS for d in deliveries)
    # The attack was real: A's POSTs were held to its cap, so most deliveries waited for a slot.
    assert endpoint.most_in_flight <= CAP
    assert pending and max(pending) <= PENDING_BOUND, pending
