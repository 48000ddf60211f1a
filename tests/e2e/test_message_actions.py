"""Message actions, contacts and presence end to end: the services as separate processes on the
simulator, two sessions of one tenant talking to each other on one stack."""

import json
from typing import Any

import httpx
import nats
from e2e.client import Tenant, eventually, new_tenant

from zaphub_devstack.testing import Stack


async def two_sessions(
    http: httpx.AsyncClient, stack: Stack, name: str
) -> tuple[Tenant, dict[str, Any], dict[str, Any]]:
    tenant = await new_tenant(http, stack.admin_key, name)
    return tenant, await tenant.connected_session("alice"), await tenant.connected_session("bob")


async def test_send_edit_revoke(sim_stack: Stack) -> None:
    """A sent text is edited (new content, edited_at, `edited` in its history), then deleted for
    everyone (`revoked`); the contact's session sees both; bad edits are 4xx naming the field."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant, alice, bob = await two_sessions(http, sim_stack, "actions")
        accepted = await tenant.send_text(alice["id"], bob["jid"], "hello")
        path = f"/api/v1/messages/{accepted['id']}"
        await tenant.wait_status(accepted["id"], {"sent", "delivered", "read"}, timeout=20)

        for body, field in (({"text": ""}, "text"), ({"caption": "x"}, "caption"), ({}, "text")):
            refused = await http.patch(path, json=body, headers=tenant.headers)
            assert refused.status_code == 422, refused.text
            assert refused.json()["errors"][0]["field"] == field

        edit = await http.patch(path, json={"text": "hello, edited"}, headers=tenant.headers)
        assert edit.status_code == 202, edit.text
        await tenant.wait_status(edit.json()["id"], {"sent", "delivered", "read"}, timeout=20)

        async def edited() -> dict[str, Any] | None:
            message = await tenant.message(accepted["id"])
            return message if message["edited_at"] else None

        message = await eventually(edited, 20, "the edit to be projected")
        assert message["content"]["text"] == "hello, edited"
        edits = [h for h in message["history"] if h["status"] == "edited"]
        assert [h["detail"] for h in edits] == [{"text": "hello, edited"}]

        revoke = await http.delete(path, headers=tenant.headers)
        assert revoke.status_code == 202, revoke.text

        async def revoked() -> dict[str, Any] | None:
            message = await tenant.message(accepted["id"])
            return message if message["revoked_at"] else None

        message = await eventually(revoked, 20, "the revoke to be projected")
        assert "revoked" in [h["status"] for h in message["history"]]
        again = await http.delete(path, headers=tenant.headers)
        assert again.status_code == 409

        received = await http.get(
            f"/api/v1/sessions/{bob['id']}/messages", params={"direction": "inbound"}, headers=tenant.headers
        )
        theirs = next(m for m in received.json() if m["whatsapp_id"] == message["whatsapp_id"])
        full = await tenant.message(theirs["id"])
        assert full["content"]["text"] == "hello, edited" and full["revoked_at"]


async def test_contacts_blocklist_presence_and_read(sim_stack: Stack) -> None:
    """A contact check tells on- and off-WhatsApp numbers; a profile is the sim's; block and unblock
    change the blocklist; presence and typing reach the other session as events; a chat's received
    messages are marked read; bad input is 422 naming the field."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant, alice, bob = await two_sessions(http, sim_stack, "contacts")
        base = f"/api/v1/sessions/{alice['id']}"
        check = await http.post(
            f"{base}/contacts/check",
            json={"numbers": ["+5511988887777", "+999123456"]},
            headers=tenant.headers,
        )
        assert check.status_code == 200, check.text
        on, off = check.json()
        assert (on["on_whatsapp"], on["jid"]) == (True, "5511988887777@s.whatsapp.net") and on["lid"]
        assert (off["on_whatsapp"], off["jid"]) == (False, None)
        bad = await http.post(f"{base}/contacts/check", json={"numbers": ["nope"]}, headers=tenant.headers)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("numbers")

        profile = await http.get(f"{base}/contacts/{bob['jid']}", headers=tenant.headers)
        assert profile.status_code == 200 and profile.json()["lid"] == bob["lid"]
        missing = await http.get(f"{base}/contacts/+999123456", headers=tenant.headers)
        assert missing.status_code == 404

        blocked = await http.put(f"{base}/blocklist/{bob['jid']}", headers=tenant.headers)
        assert blocked.json() == {"jids": [bob["jid"]]}
        assert (await http.get(f"{base}/blocklist", headers=tenant.headers)).json() == {"jids": [bob["jid"]]}
        unblocked = await http.delete(f"{base}/blocklist/{bob['jid']}", headers=tenant.headers)
        assert unblocked.json() == {"jids": []}

        nc = await nats.connect(sim_stack.nats_url)
        seen: list[dict[str, Any]] = []

        async def keep(msg: Any) -> None:
            seen.append(json.loads(msg.data))

        try:
            await nc.subscribe(f"zaphub.v1.evt.{tenant.id}.{bob['id']}.*.*", cb=keep)
            await nc.flush()
            presence = await http.post(
                f"{base}/presence", json={"state": "available"}, headers=tenant.headers
            )
            typing = await http.post(
                f"{base}/chats/{bob['jid']}/presence", json={"state": "composing"}, headers=tenant.headers
            )
            assert presence.status_code == typing.status_code == 202
            bad_state = await http.post(f"{base}/presence", json={"state": "away"}, headers=tenant.headers)
            assert bad_state.status_code == 422 and bad_state.json()["errors"][0]["field"] == "state"

            def of(kind: str) -> list[dict[str, Any]]:
                return [e["data"] for e in seen if e["type"] == f"io.zaphub.{kind}.v1"]

            async def both() -> bool:
                return bool(of("presence.updated") and of("chat.presence"))

            await eventually(both, 10, "presence and typing at the other session")
            assert of("presence.updated")[0] == {"jid": alice["jid"], "available": True, "last_seen": None}
            typed = of("chat.presence")[0]
            who = (typed["chat"], typed["sender"], typed["state"])
            assert who == (alice["jid"], alice["jid"], "composing")
            assert typed["at"]
        finally:
            await nc.close()

        sent = await tenant.send_text(bob["id"], alice["jid"], "read me")
        sent = await tenant.wait_status(sent["id"], {"sent", "delivered", "read"}, timeout=20)
        read = await http.post(f"{base}/chats/{bob['jid']}/read", headers=tenant.headers)
        assert read.status_code == 200, read.text
        assert sent["whatsapp_id"] in read.json()["marked"]
        bad_chat = await http.post(f"{base}/chats/nobody/read", headers=tenant.headers)
        assert bad_chat.status_code == 422 and bad_chat.json()["errors"][0]["field"] == "chat"


async def test_a_poll_counts_votes_from_another_session(sim_stack: Stack) -> None:
    """A poll sent to another session is voted on there; its `GET /messages/{id}` shows the tallies,
    a changed vote replacing the first; a poll with one option is 422 naming `options`."""
    async with httpx.AsyncClient(base_url=sim_stack.api_url, timeout=10) as http:
        tenant, alice, bob = await two_sessions(http, sim_stack, "polls")
        send = f"/api/v1/sessions/{alice['id']}/messages"
        bad = await http.post(
            send,
            json={"to": bob["jid"], "type": "poll", "name": "?", "options": ["one"]},
            headers=tenant.headers,
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "options"
        poll = {
            "to": bob["jid"],
            "type": "poll",
            "name": "Lunch?",
            "options": ["Yes", "No"],
            "selectable_count": 1,
        }
        accepted = (await http.post(send, json=poll, headers=tenant.headers)).json()
        sent = await tenant.wait_status(accepted["id"], {"sent", "delivered", "read"}, timeout=20)
        assert sent["tallies"] == {"Yes": 0, "No": 0}

        for options in (["No"], ["Yes"]):
            vote = {
                "to": alice["jid"],
                "type": "poll_vote",
                "poll_id": sent["whatsapp_id"],
                "options": options,
            }
            voted = await http.post(
                f"/api/v1/sessions/{bob['id']}/messages", json=vote, headers=tenant.headers
            )
            assert voted.status_code == 202, voted.text
            await tenant.wait_status(voted.json()["id"], {"sent", "delivered", "read"}, timeout=20)

        async def counted() -> dict[str, Any] | None:
            message = await tenant.message(accepted["id"])
            return message if message["tallies"] == {"Yes": 1, "No": 0} else None

        await eventually(counted, 20, "the changed vote to be counted")
