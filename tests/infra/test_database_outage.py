"""PostgreSQL behind a real PgBouncer in transaction pooling (`ZAPHUB_DB_POOLER=pgbouncer`) with two
API replicas, and PostgreSQL stopped for 20 s under a send load: the API answers 503 in time, never
500, `/ready` follows, and nothing accepted is lost or sent twice."""

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from e2e.client import Tenant, eventually, new_tenant
from e2e.load import UNLIMITED, SendLoad, assert_each_handed_over_once

from zaphub_devstack.pytest_plugin import require_program
from zaphub_devstack.testing import Stack

pytestmark = pytest.mark.slow
OUTAGE = 20.0
DB_TIMEOUT = 5.0  # ZAPHUB_DB_TIMEOUT of the stack: no answer may take longer (plus a scheduling margin)


@dataclass
class Pooled:
    stack: Stack
    targets: list[tuple[Tenant, str]]


@pytest.fixture(scope="module")
async def pooled(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pooled]:
    """One stack for the module: PgBouncer before PostgreSQL, two API processes, two tenants with two
    connected sessions each."""
    require_program("pgbouncer", "pgbouncer")
    env = {
        **UNLIMITED,
        "ZAPHUB_DB_POOLER": "pgbouncer",
        "ZAPHUB_DB_TIMEOUT": str(DB_TIMEOUT),
        "ZAPHUB_API_REPLICAS": "2",
        "ZAPHUB_SIM_PAIR_DELAY": "0.3",
    }
    async with (
        Stack(tmp_path_factory.mktemp("pooled-stack"), env=env) as stack,
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http,
    ):
        targets = []
        for name in ("acme", "globex"):
            tenant = await new_tenant(http, stack.admin_key, name)
            targets += [(tenant, (await tenant.connected_session(f"s{i}"))["id"]) for i in range(2)]
        yield Pooled(stack, targets)


async def test_api_replicas_and_projector_work_through_pgbouncer(pooled: Pooled) -> None:
    """Through transaction pooling, both API replicas accept every send and the projector records each
    one as sent: no prepared statement is lost between server connections."""
    async with SendLoad(pooled.stack.api_urls, pooled.targets, rate=40) as load:
        await asyncio.sleep(3)
    assert {a.status for a in load.answers} == {202}, [a for a in load.answers if a.status != 202][:3]
    await load.wait_done(timeout=60, data_dir=pooled.stack.data_dir)
    assert_each_handed_over_once(pooled.stack.data_dir, load.accepted)


async def _watch_ready(api_urls: list[str], seen: list[tuple[float, int]], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=DB_TIMEOUT + 2) as http:
        while not stop.is_set():
            for url in api_urls:
                try:
                    seen.append((time.monotonic(), (await http.get(f"{url}/ready")).status_code))
                except httpx.TransportError:
                    seen.append((time.monotonic(), 0))
            await asyncio.sleep(0.3)


async def test_postgres_outage_answers_503_in_time_and_loses_nothing(pooled: Pooled) -> None:
    """PostgreSQL stopped for 20 s under load: sends answer 503 with Retry-After and a problem type
    within ZAPHUB_DB_TIMEOUT, never 500; /ready goes 503 and back to 200; every message accepted
    before or after is handed to WhatsApp once and its statuses (queued, sent) are all projected."""
    stack = pooled.stack
    ready: list[tuple[float, int]] = []
    stop_watching = asyncio.Event()
    watcher = asyncio.create_task(_watch_ready(stack.api_urls, ready, stop_watching))
    async with SendLoad(stack.api_urls, pooled.targets, rate=20) as load:
        await asyncio.sleep(2)
        async with stack.down("postgres", signal.SIGINT):
            down_at = time.monotonic()
            await asyncio.sleep(OUTAGE)
            up_at = time.monotonic()

        async def all_ready() -> bool:
            return all(status == 200 for _, status in ready[-len(stack.api_urls) :])

        await eventually(all_ready, 60, "/ready of every API to answer 200 again")
        back_at = time.monotonic()
        await asyncio.sleep(3)
    stop_watching.set()
    await watcher

    answers = load.answers
    assert {a.status for a in answers} <= {202, 503}, [a for a in answers if a.status not in (202, 503)][:3]
    refused = [a for a in answers if a.status == 503]
    assert refused, "no send was refused while PostgreSQL was down"
    assert all(a.retry_after and a.problem_type and a.problem_type.endswith("unavailable") for a in refused)
    slowest = max(a.seconds for a in answers)
    assert slowest <= DB_TIMEOUT + 1.5, f"an answer took {slowest:.1f} s"
    assert [a for a in answers if a.at < down_at and a.status == 202], "nothing accepted before"
    assert [a for a in answers if a.at > back_at and a.status == 202], "nothing accepted after"
    assert any(status == 503 for at, status in ready if down_at < at < up_at), "/ready never said 503"
    assert ready[-1][1] == 200

    await load.wait_done(timeout=90, data_dir=stack.data_dir)
    assert_each_handed_over_once(stack.data_dir, load.accepted)
    for message_id in load.accepted:
        message = await load.owners[message_id].message(message_id)
        statuses = [h["status"] for h in message["history"]]
        assert "queued" in statuses and "sent" in statuses, statuses
