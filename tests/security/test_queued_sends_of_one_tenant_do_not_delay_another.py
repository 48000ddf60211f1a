"""Attack on fair sharing: tenant A queues thousands of sends far beyond its per-minute limit. They
wait parked outside the send consumer every tenant shares, so tenant B's send goes out at once."""

import asyncio
import time
from typing import Any

import httpx
import nats
import pytest
from e2e.client import eventually, new_tenant
from e2e.wire import delivered_lines

from zaphub_contracts import streams
from zaphub_devstack.testing import Stack

pytestmark = pytest.mark.slow
FLOOD = 2000
DONE = {"sent", "delivered", "read"}
TO = "+5511988887777"
# B's send took 0.3 s with A's backlog parked (measured on 2 cores); an unfair dispatcher makes it
# wait behind A's minutes-long backlog. 10 s leaves a loaded CI machine 30 times the measured time.
ON_TIME = 10.0


async def test_thousands_of_queued_sends_of_one_tenant_do_not_delay_another(run_stack: Any) -> None:
    """A (5 a minute) floods 2000 sends; B's send is sent within 10 s, and A gets its 5 a minute."""
    stack: Stack = await run_stack()
    admin = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=60) as http:
        flooder = await new_tenant(http, stack.admin_key, "a")
        victim = await new_tenant(http, stack.admin_key, "b")
        patched = await http.patch(
            f"/api/v1/tenants/{flooder.id}", json={"rate_limits": {"per_minute": 5}}, headers=admin
        )
        assert patched.status_code == 200, patched.text
        a_session, b_session = await flooder.connected_session(), await victim.connected_session()
        ids: list[str] = []
        for start in range(0, FLOOD, 100):
            texts = (f"a{i}" for i in range(start, start + 100))
            batch = await asyncio.gather(*(flooder.send_text(a_session["id"], TO, t) for t in texts))
            ids += [m["id"] for m in batch]
        flooded_at = time.monotonic()
        await asyncio.sleep(3)  # A's backlog reaches the dispatcher and waits for its window
        started = time.monotonic()
        sent = await victim.send_text(b_session["id"], TO, "on time")
        await victim.wait_status(sent["id"], DONE, timeout=ON_TIME)
        assert time.monotonic() - started < ON_TIME
        # A's backlog is parked, not pending on the consumer every tenant shares.
        nc = await nats.connect(stack.nats_url)
        try:

            async def backlog_parked() -> bool:
                info = await nc.jetstream().consumer_info(streams.CMD.name, streams.SEND_CONSUMER.durable)
                return info.num_ack_pending < FLOOD // 10

            await eventually(backlog_parked, 30, "A's backlog off the shared consumer")
        finally:
            await nc.close()

        def flooder_sent() -> int:
            return sum(1 for line in delivered_lines(stack.data_dir) if line["session_id"] == a_session["id"])

        async def first_five() -> bool:
            return flooder_sent() >= 5

        await eventually(first_five, 30, "A's first 5 sends")
        minutes = (time.monotonic() - flooded_at) / 60
        assert flooder_sent() <= 5 * (int(minutes) + 1)  # A's limit held all along
