"""Webhooks and live events through the whole stack on the simulator: signed deliveries, retries with a
delivery log, a dispatcher killed mid-delivery, and tenant isolation of webhooks and of the SSE stream."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.client import Tenant, eventually, new_tenant
from e2e.receiver import Received, Receiver

from zaphub_devstack.testing import Stack
from zaphub_dispatcher.webhook_signing import verify

pytestmark = pytest.mark.slow
TO = "+5511988887777"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("webhooks-stack")
    env = {
        "ZAPHUB_TRANSPORT": "sim",
        "ZAPHUB_SIM_PAIR_DELAY": "0.5",
        "ZAPHUB_WEBHOOK_RETRY_BASE_DELAY": "0.2",
        "ZAPHUB_WEBHOOK_RETRY_MAX_DELAY": "1",
        "ZAPHUB_WEBHOOK_MAX_ATTEMPTS": "100",
        "ZAPHUB_SSE_HEARTBEAT": "1",
        "ZAPHUB_EGRESS_ALLOW": "127.0.0.1",  # the receivers listen there
    }
    async with Stack(data_dir, env=env) as stack:
        yield stack


async def add_webhook(tenant: Tenant, url: str, events: list[str]) -> dict[str, Any]:
    response = await tenant.http.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=tenant.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliveries(tenant: Tenant, webhook_id: str) -> list[dict[str, Any]]:
    response = await tenant.http.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def sent_for(message_id: str, status: int | None = 200) -> Any:
    def check(requests: list[Received]) -> list[Received]:
        return [
            r
            for r in requests
            if r.headers.get("zaphub-event-type") == "message.sent"
            and r.event["data"]["message_id"] == message_id
            and (status is None or r.answered == status)
        ]

    return check


async def test_message_sent_is_delivered_signed(stack: Stack) -> None:
    """A sent message reaches the tenant's webhook as a signed CloudEvent POST, logged as succeeded."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http, Receiver() as receiver:
        tenant = await new_tenant(http, stack.admin_key)
        hook = await add_webhook(tenant, receiver.url, ["message.sent"])
        session = await tenant.connected_session()
        accepted = await tenant.send_text(session["id"], TO, "hello webhook")
        (got,) = await receiver.wait_for(sent_for(accepted["id"]), 60, "the message.sent delivery")
        assert got.headers["content-type"] == "application/cloudevents+json"
        assert verify(hook["secret"], got.body, got.headers["zaphub-signature"])
        assert not verify("whsec_wrong-secret-000000", got.body, got.headers["zaphub-signature"])
        assert got.event["type"] == "io.zaphub.message.sent.v1"
        assert got.event["tenantid"] == tenant.id
        assert got.headers["zaphub-event-id"] == got.event["id"]
        assert got.headers["zaphub-attempt"] == "1"
        assert all(r.headers["zaphub-event-type"] == "message.sent" for r in receiver.requests)

        async def logged() -> list[dict[str, Any]] | None:
            found = await deliveries(tenant, hook["id"])
            return found if found and found[0]["status"] == "succeeded" else None

        (delivery,) = await eventually(logged, 30, "the delivery to be logged")
        assert delivery["id"] == got.headers["zaphub-delivery-id"]
        assert delivery["attempts"] == 1 and delivery["last_response_code"] == 200


async def test_failing_receiver_gets_the_delivery_on_the_third_attempt(stack: Stack) -> None:
    """A receiver answering 500 twice then 200 gets one delivery three times; the log shows 3 attempts."""
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http,
        Receiver(answer=lambda n: 500 if n <= 2 else 200) as receiver,
    ):
        tenant = await new_tenant(http, stack.admin_key)
        hook = await add_webhook(tenant, receiver.url, ["message.sent"])
        session = await tenant.connected_session()
        accepted = await tenant.send_text(session["id"], TO, "third time lucky")
        await receiver.wait_for(sent_for(accepted["id"]), 60, "the successful attempt")
        tries = sent_for(accepted["id"], status=None)(receiver.requests)
        assert [r.headers["zaphub-attempt"] for r in tries] == ["1", "2", "3"]
        assert [r.answered for r in tries] == [500, 500, 200]
        assert len({r.headers["zaphub-delivery-id"] for r in tries}) == 1

        async def logged() -> list[dict[str, Any]] | None:
            found = await deliveries(tenant, hook["id"])
            return found if found and found[0]["attempts"] == 3 else None

        (delivery,) = await eventually(logged, 30, "three attempts in the log")
        assert delivery["status"] == "succeeded" and delivery["last_response_code"] == 200
        assert [a["response_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
        assert delivery["attempt_log"][0]["error"].startswith("HTTP 500")


async def test_other_tenants_events_never_reach_a_webhook(stack: Stack) -> None:
    """Two tenants with catch-all webhooks each receive only their own tenant's events."""
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http,
        Receiver() as to_alice,
        Receiver() as to_bob,
    ):
        alice = await new_tenant(http, stack.admin_key, "alice")
        bob = await new_tenant(http, stack.admin_key, "bob")
        await add_webhook(alice, to_alice.url, ["*"])
        await add_webhook(bob, to_bob.url, ["*"])
        alice_session = await alice.connected_session()
        bob_session = await bob.connected_session()
        bob_msg = await bob.send_text(bob_session["id"], TO, "bob's")
        alice_msg = await alice.send_text(alice_session["id"], TO, "alice's")
        await to_bob.wait_for(sent_for(bob_msg["id"]), 60, "bob's message.sent")
        await to_alice.wait_for(sent_for(alice_msg["id"]), 60, "alice's message.sent")
        assert {r.event["tenantid"] for r in to_alice.requests} == {alice.id}
        assert {r.event["tenantid"] for r in to_bob.requests} == {bob.id}
        assert "session.connected" in {r.headers["zaphub-event-type"] for r in to_alice.requests}


async def _read_sse(response: httpx.Response, into: list[dict[str, str]], ready: asyncio.Event) -> None:
    message: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            ready.set()
        elif not line:
            if message:
                into.append(message)
            message = {}
        else:
            name, _, value = line.partition(":")
            message[name] = value.removeprefix(" ")


async def test_sse_streams_own_tenant_events_only(stack: Stack) -> None:
    """The SSE stream of one tenant carries its own events of the asked types, never another tenant's."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http:
        alice = await new_tenant(http, stack.admin_key, "alice")
        bob = await new_tenant(http, stack.admin_key, "bob")
        alice_session = await alice.connected_session()
        bob_session = await bob.connected_session()
        bad = await http.get("/api/v1/events", params={"types": "message.nope"}, headers=alice.headers)
        assert bad.status_code == 422 and "types" in bad.text
        received: list[dict[str, str]] = []
        ready = asyncio.Event()
        params = {"types": "message.sent,message.received"}
        async with http.stream(
            "GET", "/api/v1/events", params=params, headers=alice.headers, timeout=None
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            reader = asyncio.create_task(_read_sse(response, received, ready))
            try:
                await asyncio.wait_for(ready.wait(), 30)
                bob_msg = await bob.send_text(bob_session["id"], TO, "bob's")
                await bob.wait_status(bob_msg["id"], {"sent", "delivered", "read"}, timeout=60)
                alice_msg = await alice.send_text(alice_session["id"], TO, "alice's")

                async def alice_sent() -> bool:
                    return any(
                        json.loads(m["data"])["data"]["message_id"] == alice_msg["id"]
                        for m in received
                        if m.get("event") == "message.sent"
                    )

                await eventually(alice_sent, 60, "alice's message.sent on the stream")
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        events = [json.loads(m["data"]) for m in received]
        assert {e["tenantid"] for e in events} == {alice.id}
        assert {m["event"] for m in received} <= {"message.sent", "message.received"}
        assert all(m["id"] == json.loads(m["data"])["id"] for m in received)


async def test_pending_delivery_survives_a_dispatcher_kill(stack: Stack) -> None:
    """A delivery still being retried when the dispatcher is killed with -9 is delivered after restart."""
    healthy = asyncio.Event()
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as http,
        Receiver(answer=lambda n: 200 if healthy.is_set() else 503) as receiver,
    ):
        tenant = await new_tenant(http, stack.admin_key)
        hook = await add_webhook(tenant, receiver.url, ["message.sent"])
        session = await tenant.connected_session()
        accepted = await tenant.send_text(session["id"], TO, "survive the kill")
        await receiver.wait_for(sent_for(accepted["id"], status=503), 60, "a failed first attempt")
        old = stack.kill("dispatcher-1")
        healthy.set()
        await stack.wait_restarted("dispatcher-1", old, within=60)
        (ok, *_) = await receiver.wait_for(sent_for(accepted["id"]), 90, "the delivery after the restart")
        assert verify(hook["secret"], ok.body, ok.headers["zaphub-signature"])

        async def logged() -> list[dict[str, Any]] | None:
            found = await deliveries(tenant, hook["id"])
            return found if found and found[0]["status"] == "succeeded" else None

        await eventually(logged, 30, "the delivery to be logged as succeeded")
