"""Attack on durability: WhatsApp hands the host messages while NATS does not answer. The host keeps
them in its fsync'd spool and, once NATS is back, every one is a `message.received` event, once, in
the order WhatsApp delivered them."""

import asyncio
import json
import uuid
from typing import Any

import httpx
import nats
import pytest
from e2e.client import eventually, new_tenant

from zaphub_contracts import subjects
from zaphub_contracts.host import FaultKind, HostOp, InjectFault
from zaphub_devstack.testing import Stack
from zaphub_runtime.codec import encode

pytestmark = pytest.mark.slow
COUNT = 40
AFTER = 1.0  # seconds from the fault to the first message: NATS is frozen by then


async def received_texts(nats_url: str, tenant: str, session: str) -> list[tuple[str, str]]:
    """(event id, text) of every message.received event the tenant's stream holds, in stream order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        subject = subjects.event(uuid.UUID(tenant), uuid.UUID(session), "message.received")
        sub = await js.subscribe(subject, ordered_consumer=True)
        found: list[tuple[str, str]] = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except TimeoutError:
                break
            event = json.loads(msg.data)
            found.append((event["id"], event["data"]["content"]["text"]))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def test_inbound_messages_during_a_nats_outage_arrive_once_in_order(run_stack: Any) -> None:
    """40 messages reach the session while NATS is frozen (publishes time out): they wait in the
    host's spool on disk, then all 40 are stored once each, in order."""
    stack: Stack = await run_stack()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        session = await tenant.connected_session()
    session_id = uuid.UUID(session["id"])
    tenant_id = uuid.UUID(tenant.id)
    fault = InjectFault(
        tenant_id=tenant_id, session_id=session_id, kind=FaultKind.INBOUND, count=COUNT, seconds=AFTER
    )
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.request(subjects.host(session_id, HostOp.FAULT), encode(fault), timeout=5)
    finally:
        await nc.close()
    with stack.frozen("nats"):
        await asyncio.sleep(AFTER + COUNT * 0.05 + 7)  # every message in, and the first publishes timed out
        spooled = [p for p in stack.data_dir.rglob("spool/*.jsonl") if p.stat().st_size > 0]
        assert spooled, "the events were not written to the spool"

    async def all_arrived() -> bool:
        return len(await received_texts(stack.nats_url, tenant.id, session["id"])) >= COUNT

    await eventually(all_arrived, 90, f"{COUNT} message.received events")
    await asyncio.sleep(2)  # a late duplicate would show up by now
    found = await received_texts(stack.nats_url, tenant.id, session["id"])
    assert [text for _, text in found] == [f"inbound {i}" for i in range(COUNT)]
    assert len({event_id for event_id, _ in found}) == COUNT
