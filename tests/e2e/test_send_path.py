"""The whole send path through the four services as separate processes, on the simulator transport."""

import json
import uuid

import httpx
import nats
from e2e.client import eventually, new_tenant
from e2e.wire import delivered_lines

from zaphub_contracts import streams, subjects
from zaphub_devstack.testing import Stack


async def test_text_goes_from_api_to_whatsapp_and_back_to_sent(sim_stack: Stack) -> None:
    """A text accepted by the API is handed to the simulated WhatsApp once and reaches sent, then read."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, sim_stack.admin_key)
        session = await tenant.connected_session()
        assert session["jid"].endswith("@s.whatsapp.net")
        assert session["host"]
        accepted = await tenant.send_text(session["id"], "+5511988887777", "hello")
        assert accepted["status"] == "queued"
        sent = await tenant.wait_status(accepted["id"], {"sent", "delivered", "read"}, timeout=20)
        assert sent["whatsapp_id"].startswith("3EB0")
        read = await tenant.wait_status(accepted["id"], {"read"}, timeout=20)
        assert [h["status"] for h in read["history"]][:2] == ["queued", "sent"]
        assert {"delivered", "read"} <= {h["status"] for h in read["history"]}
        wire = [line for line in delivered_lines(sim_stack.data_dir) if line["message_id"] == accepted["id"]]
        assert len(wire) == 1
        assert wire[0]["to"] == "5511988887777@s.whatsapp.net"
        stats = (await http.get("/api/v1/sessions/stats", headers=tenant.headers)).json()
        assert stats["sessions_by_status"]["connected"] == 1
        assert stats["capacity"]["active"] == 1


async def test_malformed_command_is_dead_lettered_and_the_dispatcher_keeps_going(sim_stack: Stack) -> None:
    """Garbage on the send subject lands on the DLQ with a reason, and the next message still goes out."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, sim_stack.admin_key)
        session = await tenant.connected_session()
        nc = await nats.connect(sim_stack.nats_url)
        try:
            js = nc.jetstream()
            poison = subjects.send_command(uuid.UUID(tenant.id), uuid.UUID(session["id"]))
            await js.publish(poison, b"{not json", headers={"Nats-Msg-Id": str(uuid.uuid4())})
            await js.publish(poison, b'{"tenant_id": "x"}', headers={"Nats-Msg-Id": str(uuid.uuid4())})
            accepted = await tenant.send_text(session["id"], "+5511988887777", "after the poison")
            await tenant.wait_status(accepted["id"], {"sent", "delivered", "read"}, timeout=20)

            async def dead_letters() -> list[dict[str, object]] | None:
                sub = await js.subscribe(
                    subjects.dead_letter(tenant.id, session["id"]), ordered_consumer=True
                )
                found = []
                try:
                    while True:
                        msg = await sub.next_msg(timeout=0.5)
                        found.append(json.loads(msg.data))
                except nats.errors.TimeoutError:
                    pass
                finally:
                    await sub.unsubscribe()
                return found if len(found) >= 2 else None

            letters = await eventually(dead_letters, 10, "two dead letters")
            assert {letter["reason"] for letter in letters} == {"malformed_command"}
            assert all(letter["detail"] for letter in letters)
            info = await js.stream_info(streams.DLQ.name)
            assert info.state.messages >= 2
        finally:
            await nc.close()


async def test_recipient_not_on_whatsapp_fails_at_once_with_a_reason(sim_stack: Stack) -> None:
    """A permanent error fails the message at once with a machine-readable reason."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, sim_stack.admin_key)
        session = await tenant.connected_session()
        accepted = await tenant.send_text(session["id"], "+9991234567", "nobody there")
        failed = await tenant.wait_status(accepted["id"], {"failed"}, timeout=20)
        assert failed["failure_reason"] == "recipient_not_on_whatsapp"
