"""Nothing lost, nothing twice, in order: the send path while real processes are killed and restarted."""

import asyncio
import time
import uuid
from typing import Any

import httpx
import nats
import pytest
from e2e.client import Tenant, eventually, new_tenant
from e2e.wire import delivered_lines, whatsapp_ids_by_message

from zaphub_contracts import streams, subjects
from zaphub_contracts.host import FaultKind, HostOp, InjectFault
from zaphub_devstack.testing import Stack
from zaphub_runtime.codec import encode

pytestmark = pytest.mark.slow
DONE = {"sent", "delivered", "read"}
UNLIMITED = {
    "ZAPHUB_RATE_PER_MINUTE": "1000000",
    "ZAPHUB_RATE_PER_HOUR": "1000000",
    "ZAPHUB_RATE_PER_DAY": "1000000",
}


async def all_done(tenant: Tenant, ids: list[str], timeout: float) -> None:
    pending = set(ids)

    async def check() -> bool:
        for message_id in list(pending):
            if (await tenant.message(message_id))["status"] in DONE:
                pending.discard(message_id)
        return not pending

    await eventually(check, timeout, f"{len(pending)} messages to be sent")


async def test_killing_dispatcher_ratelimiter_and_host_loses_nothing_and_sends_nothing_twice(
    run_stack: Any,
) -> None:
    """300 messages reach sent while a dispatcher, a ratelimiter and a session-host are killed with -9."""
    stack: Stack = await run_stack(
        ZAPHUB_SESSION_HOSTS="2", ZAPHUB_DISPATCHERS="2", ZAPHUB_RATELIMITERS="2", **UNLIMITED
    )
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        sessions = [await tenant.connected_session(f"s{i}") for i in range(4)]
        ids: list[str] = []
        for i in range(300):
            session = sessions[i % len(sessions)]
            ids.append((await tenant.send_text(session["id"], "+5511988887777", f"m{i}"))["id"])
            if i == 60:
                stack.kill("dispatcher-1")
            elif i == 120:
                stack.kill("ratelimiter-1")
            elif i == 180:
                stack.kill("session-host-1")
        await all_done(tenant, ids, timeout=120)
    wire = whatsapp_ids_by_message(stack.data_dir)
    assert set(ids) <= set(wire)
    twice = {m: w for m, w in wire.items() if len(w) > 1}
    assert not twice, f"messages handed over under two WhatsApp ids: {twice}"


async def test_messages_of_one_session_go_out_in_acceptance_order(run_stack: Any) -> None:
    """Across two dispatchers and transient failures, one session's messages reach WhatsApp in order."""
    stack: Stack = await run_stack(ZAPHUB_DISPATCHERS="2", ZAPHUB_RETRY_BASE_DELAY="0.05", **UNLIMITED)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        session, other = await tenant.connected_session("ordered"), await tenant.connected_session("other")
        nc = await nats.connect(stack.nats_url)
        try:
            fault = InjectFault(
                tenant_id=uuid.UUID(tenant.id),
                session_id=uuid.UUID(session["id"]),
                kind=FaultKind.FAIL_SENDS,
                count=5,
            )
            await nc.request(subjects.host(uuid.UUID(session["id"]), HostOp.FAULT), encode(fault), timeout=5)
        finally:
            await nc.close()
        ids = [(await tenant.send_text(session["id"], "+5511988887777", f"n{i}"))["id"] for i in range(40)]
        # The other session is not held back by the failing one.
        side = await tenant.send_text(other["id"], "+5511988887777", "independent")
        await tenant.wait_status(side["id"], DONE, timeout=20)
        await all_done(tenant, ids, timeout=90)
    order = [
        line["message_id"] for line in delivered_lines(stack.data_dir) if line["session_id"] == session["id"]
    ]
    first_seen = list(dict.fromkeys(order))
    assert first_seen == ids


async def test_a_backlog_goes_out_in_order_without_cycling_through_jetstream(run_stack: Any) -> None:
    """Messages accepted while the dispatcher is frozen go out once each, in order, when it thaws.

    One session's backlog is ten times what its lane holds. Commands that find the lane full wait in
    JetStream about as long as the commands ahead of them take, and commands that come back out of
    order wait in the lane for the earlier ones, so the backlog is not fetched over and over.
    """
    stack: Stack = await run_stack(**UNLIMITED)
    nc = await nats.connect(stack.nats_url)
    try:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            tenant = await new_tenant(http, stack.admin_key)
            sessions = [await tenant.connected_session(f"s{i}") for i in range(3)]
            counts = [320, 40, 40]
            before = await _send_deliveries(nc)
            with stack.frozen("dispatcher-1"):

                async def burst(session: dict[str, Any], count: int) -> list[str]:
                    return [
                        (await tenant.send_text(session["id"], "+5511988887777", f"b{i}"))["id"]
                        for i in range(count)
                    ]

                accepted = await asyncio.gather(*(burst(s, n) for s, n in zip(sessions, counts, strict=True)))
            await all_done(tenant, [m for ids in accepted for m in ids], timeout=120)
        fetched = await _send_deliveries(nc) - before
    finally:
        await nc.close()
    lines = delivered_lines(stack.data_dir)
    for session, ids in zip(sessions, accepted, strict=True):
        order = [line["message_id"] for line in lines if line["session_id"] == session["id"]]
        assert order == ids  # in acceptance order, and none twice
    # About 1.8 deliveries a command on an idle machine; under heavy load it passed the old bound of
    # 2.5 (the lane's wait follows measured service time, which CPU contention stretches unevenly).
    # With a fixed short delay for a full lane the backlog cycled while it drained: about 4.5.
    assert fetched < 3.5 * sum(counts), f"{fetched} deliveries for {sum(counts)} commands"


async def test_a_run_cut_short_by_failures_sends_the_rest_once_in_order(run_stack: Any) -> None:
    """A backlog goes to the host in runs. A run whose head fails is retried; one that meets a
    permanent failure stops there. Every other message still goes out once and in order, and the rate
    limit counts exactly the messages that went out."""
    stack: Stack = await run_stack(ZAPHUB_RETRY_BASE_DELAY="0.05", **UNLIMITED)
    nc = await nats.connect(stack.nats_url)
    try:
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
            tenant = await new_tenant(http, stack.admin_key)
            session = await tenant.connected_session()
            with stack.frozen("dispatcher-1"):
                ids = []
                for i in range(30):
                    to = "+999123456" if i == 11 else "+5511988887777"  # 999: not on WhatsApp
                    ids.append((await tenant.send_text(session["id"], to, f"r{i}"))["id"])
                fault = InjectFault(
                    tenant_id=uuid.UUID(tenant.id),
                    session_id=uuid.UUID(session["id"]),
                    kind=FaultKind.FAIL_SENDS,
                    count=2,
                )
                await nc.request(
                    subjects.host(uuid.UUID(session["id"]), HostOp.FAULT), encode(fault), timeout=5
                )
            sent = ids[:11] + ids[12:]
            await all_done(tenant, sent, timeout=60)
            failed = await tenant.wait_status(ids[11], {"failed"}, timeout=10)
            usage = (await http.get("/api/v1/usage", headers=tenant.headers)).json()
    finally:
        await nc.close()
    assert failed["failure_reason"] == "recipient_not_on_whatsapp"
    order = [line["message_id"] for line in delivered_lines(stack.data_dir)]
    assert order == sent
    assert {w["window"]: w["used"] for w in usage["windows"]}["minute"] == len(sent)


async def _send_deliveries(nc: nats.NATS) -> int:
    info = await nc.jetstream().consumer_info(streams.CMD.name, streams.SEND_CONSUMER.durable)
    return info.delivered.consumer_seq


async def test_nats_restart_mid_flow_loses_nothing(run_stack: Any) -> None:
    """Messages accepted while NATS is down are republished by the outbox and all reach sent."""
    stack: Stack = await run_stack(**UNLIMITED)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        tenant = await new_tenant(http, stack.admin_key)
        session = await tenant.connected_session()
        ids = [(await tenant.send_text(session["id"], "+5511988887777", f"a{i}"))["id"] for i in range(20)]
        old = stack.kill("nats")
        ids += [(await tenant.send_text(session["id"], "+5511988887777", f"b{i}"))["id"] for i in range(5)]
        await stack.wait_restarted("nats", old)
        ids += [(await tenant.send_text(session["id"], "+5511988887777", f"c{i}"))["id"] for i in range(20)]
        await all_done(tenant, ids, timeout=120)
    assert set(ids) <= set(whatsapp_ids_by_message(stack.data_dir))


async def test_sixty_per_minute_then_the_rest_when_the_window_frees(run_stack: Any) -> None:
    """Default limits: 60 of 65 go out at once, 5 wait for the minute to free; others are not slowed."""
    stack: Stack = await run_stack()
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        busy = await new_tenant(http, stack.admin_key, "busy")
        calm = await new_tenant(http, stack.admin_key, "calm")
        busy_session, calm_session = await busy.connected_session(), await calm.connected_session()
        ids = await asyncio.gather(
            *(busy.send_text(busy_session["id"], "+5511988887777", f"r{i}") for i in range(65))
        )
        started = time.monotonic()
        calm_ids = [
            (await calm.send_text(calm_session["id"], "+5511988887777", f"c{i}"))["id"] for i in range(3)
        ]
        await all_done(calm, calm_ids, timeout=20)
        await eventually(
            lambda: _count(busy, [m["id"] for m in ids], DONE, 60), 30, "the first 60 to be sent"
        )
        # The other 5 wait, and each says so, well inside the first minute.
        await eventually(
            lambda: _count(busy, [m["id"] for m in ids], {"rate_limited"}, 5), 30, "5 messages rate_limited"
        )
        statuses = [(await busy.message(m["id"]))["status"] for m in ids]
        assert statuses.count("rate_limited") == 5, statuses
        assert sum(s in DONE for s in statuses) == 60
        assert time.monotonic() - started < 55  # the checks ran inside the first minute
        await all_done(busy, [m["id"] for m in ids], timeout=90)
        waited = [await busy.message(m["id"]) for m in ids]
    limited = [m for m in waited if "rate_limited" in {h["status"] for h in m["history"]}]
    assert len(limited) == 5
    times = sorted(
        line["time"] for line in delivered_lines(stack.data_dir) if line["session_id"] == busy_session["id"]
    )
    assert len(times) == 65


async def _count(tenant: Tenant, ids: list[str], statuses: set[str], wanted: int) -> bool:
    found = 0
    for message_id in ids:
        if (await tenant.message(message_id))["status"] in statuses:
            found += 1
    return found >= wanted
