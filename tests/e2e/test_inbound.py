"""The inbound path on real processes, on the simulator with two session-hosts: a session on one host
sends an image to a session on the other, which sees the chat, the history and exactly the bytes;
and `simulate` drives a customer conversation into chats, history and media."""

import base64
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e.client import Tenant, eventually, new_tenant
from e2e.receiver import Received, Receiver

from zaphub_devstack.testing import Stack

pytestmark = pytest.mark.slow

# A 4x4 PNG: what session A sends.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAGElEQVR4nGP4z8AARAz/kRCMAtMQgMIBAO5TF+nsKTSDAAAAAElFTkSuQmCC"
)
CUSTOMER = "+5521987650001"


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    data_dir: Path = tmp_path_factory.mktemp("inbound-stack")
    env = {
        "ZAPHUB_TRANSPORT": "sim",
        "ZAPHUB_SESSION_HOSTS": "2",
        "ZAPHUB_SIM_PAIR_DELAY": "0.5",
        "ZAPHUB_EGRESS_ALLOW": "127.0.0.1",  # the webhook receiver listens there
    }
    async with Stack(data_dir, env=env) as stack:
        yield stack


async def get(tenant: Tenant, path: str, status: int = 200) -> Any:
    response = await tenant.http.get(path, headers=tenant.headers)
    assert response.status_code == status, response.text
    return response.json()


async def chats_of(tenant: Tenant, session_id: str) -> list[dict[str, Any]]:
    return list((await get(tenant, f"/api/v1/sessions/{session_id}/chats"))["items"])


async def on_two_hosts(tenant: Tenant) -> tuple[dict[str, Any], dict[str, Any]]:
    a = await tenant.connected_session("a")
    for i in range(4):
        b = await tenant.connected_session(f"b{i}")
        if b["host"] != a["host"]:
            return a, b
    raise AssertionError("no session landed on the second host")


async def test_an_image_from_a_session_on_host_1_reaches_a_session_on_host_2(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, stack.admin_key)
        other = await new_tenant(http, stack.admin_key, name="other")
        a, b = await on_two_hosts(tenant)
        body = {
            "to": "+" + b["jid"].split("@")[0],
            "type": "image",
            "data_base64": base64.b64encode(PNG).decode(),
            "mimetype": "image/png",
            "caption": "the photo",
        }
        sent = await http.post(f"/api/v1/sessions/{a['id']}/messages", json=body, headers=tenant.headers)
        assert sent.status_code == 202, sent.text
        await tenant.wait_status(sent.json()["id"], {"delivered", "read"}, timeout=20)

        async def a_chat() -> dict[str, Any] | None:
            found = [c for c in await chats_of(tenant, b["id"]) if c["chat"] == a["jid"]]
            return found[0] if found else None

        chat = await eventually(a_chat, 20, "A's chat in B's chat list")
        assert chat["unread_count"] == 1 and chat["is_group"] is False and chat["name"]
        assert chat["last_message"]["direction"] == "inbound"
        assert (chat["last_message"]["type"], chat["last_message"]["preview"]) == ("image", "the photo")

        history = await get(tenant, f"/api/v1/sessions/{b['id']}/chats/{a['jid']}/messages")
        (image,) = history["items"]
        assert image["type"] == "image" and image["direction"] == "inbound" and image["sender"] == a["jid"]

        async def media() -> httpx.Response | None:
            response = await http.get(f"/api/v1/messages/{image['id']}/media", headers=tenant.headers)
            assert response.status_code in (200, 409), response.text
            return response if response.status_code == 200 else None

        got = await eventually(media, 20, "the image's media to be stored")
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(PNG).hexdigest()
        assert got.headers["content-type"] == "image/png"
        assert got.headers["content-length"] == str(len(PNG))
        assert "filename=" in got.headers["content-disposition"]

        # What A sent is served from A's side too: the same bytes.
        async def sent_media() -> httpx.Response | None:
            response = await http.get(f"/api/v1/messages/{sent.json()['id']}/media", headers=tenant.headers)
            return response if response.status_code == 200 else None

        mine_media = await eventually(sent_media, 20, "the sent image's media to be stored")
        assert mine_media.content == PNG and mine_media.headers["content-type"] == "image/png"
        # The sender's side: the chat with B, answered by A itself (nothing unread).
        (mine,) = [c for c in await chats_of(tenant, a["id"]) if c["chat"] == b["jid"]]
        assert mine["unread_count"] == 0 and mine["last_message"]["direction"] == "outbound"

        # Another tenant sees none of it.
        await get(other, f"/api/v1/messages/{image['id']}/media", 404)
        await get(other, f"/api/v1/sessions/{b['id']}/chats", 404)
        await get(other, f"/api/v1/sessions/{b['id']}/chats/{a['jid']}/messages", 404)


async def test_simulate_drives_a_customer_conversation(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, stack.admin_key, name="desk")
        session = await tenant.connected_session("desk")
        sid = session["id"]

        async def simulate(body: dict[str, Any], status: int = 202) -> dict[str, Any]:
            response = await http.post(f"/api/v1/sessions/{sid}/simulate", json=body, headers=tenant.headers)
            assert response.status_code == status, response.text
            return dict(response.json())

        hello = await simulate(
            {
                "action": "message",
                "from": CUSTOMER,
                "push_name": "Ana",
                "content": {"type": "text", "text": "oi"},
            }
        )
        assert hello["whatsapp_id"]
        await simulate(
            {
                "action": "message",
                "from": CUSTOMER,
                "push_name": "Ana",
                "content": {"type": "image", "caption": "look"},
            }
        )
        wrong = await simulate({"action": "message", "from": CUSTOMER}, status=422)
        assert wrong["errors"][0]["field"] == "action"
        jid = CUSTOMER.lstrip("+") + "@s.whatsapp.net"

        async def chat() -> dict[str, Any] | None:
            found = [c for c in await chats_of(tenant, sid) if c["chat"] == jid and c["unread_count"] == 2]
            return found[0] if found else None

        listed = await eventually(chat, 20, "the customer's chat with two unread")
        assert listed["name"] == "Ana" and listed["last_message"]["preview"] == "look"
        history = await get(tenant, f"/api/v1/sessions/{sid}/chats/{CUSTOMER}/messages?limit=1")
        assert [m["type"] for m in history["items"]] == ["image"] and history["next"]
        older = await get(tenant, f"/api/v1/sessions/{sid}/chats/{CUSTOMER}/messages?after={history['next']}")
        assert [m["content"]["text"] for m in older["items"]] == ["oi"] and older["next"] is None

        async def media() -> httpx.Response | None:
            response = await http.get(
                f"/api/v1/messages/{history['items'][0]['id']}/media", headers=tenant.headers
            )
            return response if response.status_code == 200 else None

        picture = await eventually(media, 20, "the simulator's own image")
        assert picture.headers["content-type"] == "image/png" and picture.content.startswith(b"\x89PNG")

        # The session answers; the customer reads it: the chat is answered, the reply read.
        reply = await tenant.send_text(sid, CUSTOMER, "olá Ana!")
        sent = await tenant.wait_status(reply["id"], {"sent", "delivered", "read"}, timeout=20)
        await simulate(
            {"action": "receipt", "from": CUSTOMER, "message_id": sent["whatsapp_id"], "receipt": "read"}
        )
        await tenant.wait_status(reply["id"], {"read"}, timeout=20)
        read = await tenant.http.post(f"/api/v1/sessions/{sid}/chats/{CUSTOMER}/read", headers=tenant.headers)
        assert read.status_code == 200 and read.json()["unread_count"] == 0
        (after,) = [c for c in await chats_of(tenant, sid) if c["chat"] == jid]
        assert after["unread_count"] == 0 and after["last_message"]["direction"] == "outbound"


async def test_a_customers_message_is_posted_to_webhooks_and_its_history_sync_is_imported_only(
    stack: Stack,
) -> None:
    """A customer's message reaches the tenant's webhook as `message.received` with the sender, push
    name and the inbound trace; the chat's history sync lands in the history as imported, in both
    directions, and is never POSTed (not even to a webhook that asks for `history.imported`)."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http, Receiver() as receiver:
        tenant = await new_tenant(http, stack.admin_key, name="hooks")
        sid = (await tenant.connected_session("hooked"))["id"]
        hook = await http.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["message.received", "history.imported"]},
            headers=tenant.headers,
        )
        assert hook.status_code == 201, hook.text
        customer = "+5521987650002"

        async def simulate(body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(f"/api/v1/sessions/{sid}/simulate", json=body, headers=tenant.headers)
            assert response.status_code == 202, response.text
            return dict(response.json())

        history = [
            {"content": {"type": "text", "text": "oi, tem pão?"}},
            {"from_me": True, "content": {"type": "text", "text": "tem sim"}},
            {"content": {"type": "image", "caption": "este"}},
        ]
        await simulate({"action": "history_sync", "from": customer, "push_name": "Rui", "history": history})
        hello = await simulate(
            {
                "action": "message",
                "from": customer,
                "push_name": "Rui",
                "content": {"type": "text", "text": "e agora?"},
            }
        )

        def received(requests: list[Received]) -> list[Received]:
            return [r for r in requests if r.event["data"].get("whatsapp_id") == hello["whatsapp_id"]]

        (posted,) = await receiver.wait_for(received, 30, "the customer's message.received")
        event = posted.event
        jid = customer.lstrip("+") + "@s.whatsapp.net"
        assert posted.headers["zaphub-event-type"] == "message.received"
        assert (event["data"]["sender"], event["data"]["chat"], event["data"]["push_name"]) == (
            jid,
            jid,
            "Rui",
        )
        assert event["traceparent"].startswith("00-") and posted.headers["traceparent"].startswith("00-")
        # The receiver's trace is the host's: received -> stored -> POSTed.
        assert posted.headers["traceparent"].split("-")[1] == event["traceparent"].split("-")[1]

        async def all_four() -> list[dict[str, Any]] | None:
            page = await get(tenant, f"/api/v1/sessions/{sid}/chats/{customer}/messages")
            return list(page["items"]) if len(page["items"]) == 4 else None

        items = await eventually(all_four, 20, "the history and the live message in the chat")
        assert [(m["imported"], m["direction"], m["type"]) for m in items] == [
            (False, "inbound", "text"),
            (True, "inbound", "image"),
            (True, "outbound", "text"),
            (True, "inbound", "text"),
        ]
        (chat,) = [c for c in await chats_of(tenant, sid) if c["chat"] == jid]
        assert chat["unread_count"] == 1 and chat["name"] == "Rui"
        assert all(r.headers["zaphub-event-type"] == "message.received" for r in receiver.requests)


async def test_every_kind_of_inbound_message_is_stored_with_its_bytes(stack: Stack) -> None:
    """A customer's video, voice note, document and sticker are stored with exactly the bytes sent;
    a location, a contact card, a reply and a reaction land in the history with their content."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=10) as http:
        tenant = await new_tenant(http, stack.admin_key, name="kinds")
        sid = (await tenant.connected_session("kinds"))["id"]
        customer = "+5521987650004"

        async def simulate(body: dict[str, Any]) -> str:
            body = {"from": customer, "push_name": "Lia", **body}
            response = await http.post(f"/api/v1/sessions/{sid}/simulate", json=body, headers=tenant.headers)
            assert response.status_code == 202, response.text
            return str(response.json().get("whatsapp_id"))

        media = {
            "video": (b"\x00\x00\x00\x18ftypmp42 a video", "video/mp4", {}),
            "audio": (b"OggS a voice note", "audio/ogg", {"voice": True}),
            "document": (b"%PDF-1.4 an invoice", "application/pdf", {"filename": "nf-1042.pdf"}),
            "sticker": (b"RIFF\x10\x00\x00\x00WEBPVP8 a sticker", "image/webp", {}),
        }
        sent: dict[str, str] = {}
        for kind, (data, mimetype, extra) in media.items():
            content = {"type": kind, "data_base64": base64.b64encode(data).decode(), "mimetype": mimetype}
            sent[kind] = await simulate({"action": "message", "content": content | extra})
        vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL;waid=5511988887777:+5511988887777\nEND:VCARD"
        others: list[dict[str, Any]] = [
            {"type": "location", "latitude": -22.97, "longitude": -43.18, "name": "Copacabana"},
            {"type": "contact", "display_name": "Ana", "vcard": vcard},
            {"type": "text", "text": "esse aqui", "reply_to": sent["document"]},
        ]
        for content in others:
            sent[content["type"]] = await simulate({"action": "message", "content": content})
        await simulate({"action": "reaction", "message_id": sent["video"], "emoji": "❤️"})

        async def all_of_them() -> dict[str, dict[str, Any]] | None:
            page = await get(tenant, f"/api/v1/sessions/{sid}/chats/{customer}/messages")
            return {m["type"]: m for m in page["items"]} if len(page["items"]) == 8 else None

        stored = await eventually(all_of_them, 20, "the eight messages in the history")
        assert stored["location"]["content"]["name"] == "Copacabana"
        assert stored["contact"]["content"]["vcard"] == vcard
        assert stored["text"]["content"]["reply_to"] == sent["document"]
        reaction = stored["reaction"]["content"]
        assert (reaction["message_id"], reaction["emoji"]) == (sent["video"], "❤️")
        assert stored["audio"]["content"]["voice"] is True
        for kind, (data, mimetype, _) in media.items():

            async def downloaded(message_id: str = stored[kind]["id"]) -> httpx.Response | None:
                response = await http.get(f"/api/v1/messages/{message_id}/media", headers=tenant.headers)
                return response if response.status_code == 200 else None

            got = await eventually(downloaded, 20, f"the {kind}'s bytes")
            assert got.content == data and got.headers["content-type"] == mimetype, kind
        assert "nf-1042.pdf" in (await downloaded_headers(http, tenant, stored["document"]["id"]))


async def downloaded_headers(http: httpx.AsyncClient, tenant: Tenant, message_id: str) -> str:
    response = await http.get(f"/api/v1/messages/{message_id}/media", headers=tenant.headers)
    return str(response.headers["content-disposition"])
