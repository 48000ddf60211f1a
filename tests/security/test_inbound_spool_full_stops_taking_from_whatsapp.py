"""Attack on durability: WhatsApp keeps handing the host messages through a long NATS outage, more
than its spool may hold. Defence: once the spool is full the host disconnects the session from
WhatsApp, which keeps what it has not delivered; once NATS is back the spool is replayed, the
session connects again and takes the rest, and every message arrives once, in order."""

import asyncio
import uuid
from typing import Any

import httpx
import nats
import pytest
from e2e.client import eventually, new_tenant
from security.test_inbound_during_nats_outage_arrives_once_in_order import received_texts

from zaphub_contracts import subjects
from zaphub_contracts.host import FaultKind, HostOp, InjectFault
from zaphub_devstack.testing import Stack
from zaphub_runtime.codec import encode

pytestmark = pytest.mark.slow
# 20 s of messages (one per 0.05 s): the first publish times out after 5 s, so about a quarter of
# them are in the host when it finds NATS gone; the rest must wait at WhatsApp.
COUNT = 400
EVENT_BYTES = 900  # about, on disk
AFTER = 1.0  # seconds from the fault to the first message: NATS is frozen by then
SPOOL_MAX = 4000  # bytes: a few events fill it


async def test_inbound_spool_full_stops_taking_from_whatsapp(run_stack: Any) -> None:
    """With NATS frozen, the spool stops growing soon after it is full (the session took nothing
    more); after NATS returns, all 400 messages are stored once each, in the order they were sent."""
    stack: Stack = await run_stack(ZAPHUB_SPOOL_MAX_BYTES=str(SPOOL_MAX))
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        session = await tenant.connected_session()
    session_id = uuid.UUID(session["id"])
    fault = InjectFault(
        tenant_id=uuid.UUID(tenant.id),
        session_id=session_id,
        kind=FaultKind.INBOUND,
        count=COUNT,
        seconds=AFTER,
    )
    nc = await nats.connect(stack.nats_url)
    try:
        await nc.request(subjects.host(session_id, HostOp.FAULT), encode(fault), timeout=5)
    finally:
        await nc.close()
    with stack.frozen("nats"):
        # Every message would be in by now; the spool holds only the few taken before it was full.
        await asyncio.sleep(AFTER + COUNT * 0.05 + 7)
        spooled = sum(p.stat().st_size for p in stack.data_dir.rglob("spool/*.jsonl"))
        assert 0 < spooled < COUNT * EVENT_BYTES // 2, f"the spool grew to {spooled} bytes"
        assert "event spool full" in stack.log_tail(400)

    async def all_arrived() -> bool:
        return len(await received_texts(stack.nats_url, tenant.id, session["id"])) >= COUNT

    await eventually(all_arrived, 120, f"{COUNT} message.received events")
    await asyncio.sleep(2)  # a late duplicate would show up by now
    found = await received_texts(stack.nats_url, tenant.id, session["id"])
    assert [text for _, text in found] == [f"inbound {i}" for i in range(COUNT)]
    assert len({event_id for event_id, _ in found}) == COUNT
