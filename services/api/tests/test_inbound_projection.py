"""The projector stores what arrives from WhatsApp with who sent it (phone JID, LID, push name,
participant), and imports a history sync as history: listed, marked imported, never unread."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import nats

from zaphub_contracts import events as ev
from zaphub_contracts import subjects
from zaphub_contracts.content import ImageContent, TextContent, WhatsAppMedia
from zaphub_contracts.groups import Group
from zaphub_runtime.codec import encode

Api = Any  # the `api` fixture of conftest.py

PEER = "5511987654321@s.whatsapp.net"
PEER_LID = "123456789012345@lid"
GROUP = "120363000000000001@g.us"
MEMBER = "5511911112222@s.whatsapp.net"
MEMBER_LID = "222333444555666@lid"
ME = "5511900000001@s.whatsapp.net"


async def publish(nats_url: str, events: list[ev.EventBase]) -> None:
    nc = await nats.connect(nats_url)
    try:
        for event in events:
            subject = subjects.event(event.tenantid, event.sessionid, event.short)
            await nc.jetstream().publish(subject, encode(event))
    finally:
        await nc.close()


def envelope(tenant: str, session: str, subject: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "source": "/tests/inbound",
        "time": datetime.now(UTC),
        "subject": subject,
        "tenantid": uuid.UUID(tenant),
        "sessionid": uuid.UUID(session),
    }


async def until(api: Api, path: str, auth: dict[str, str], done: Any) -> Any:
    body: Any = None
    for _ in range(100):
        response = await api.client.get(path, headers=auth)
        body = response.json() if response.status_code == 200 else None
        if body is not None and done(body):
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never got there: {body}")


async def test_received_and_imported_messages_keep_their_senders_and_history_stays_read(
    api: Api, nats_url: str
) -> None:
    """A live message counts as unread and keeps its sender's LID and push name; a group message its
    participant; a history sync adds older messages of both directions as imported without counting
    them unread, and a message it repeats is stored once."""
    tenant, auth = await api.tenant()
    sid = (await api.session(auth))["id"]
    now = datetime.now(UTC)
    live_id = uuid.uuid4()
    live = ev.MessageReceived(
        **envelope(tenant["id"], sid, f"messages/{live_id}"),
        data=ev.MessageReceivedData(
            message_id=live_id,
            whatsapp_id="LIVE1",
            chat=PEER,
            sender=PEER,
            sender_lid=PEER_LID,
            push_name="Ana",
            sent_at=now,
            content=TextContent(text="ainda aí?"),
        ),
    )
    group_id = uuid.uuid4()
    in_group = ev.MessageReceived(
        **envelope(tenant["id"], sid, f"messages/{group_id}"),
        data=ev.MessageReceivedData(
            message_id=group_id,
            whatsapp_id="GRP1",
            chat=GROUP,
            sender=MEMBER,
            sender_lid=MEMBER_LID,
            is_group=True,
            participant=MEMBER,
            participant_lid=MEMBER_LID,
            sent_at=now,
            content=TextContent(text="bom dia"),
        ),
    )

    def imported(
        message_id: uuid.UUID, wa: str, direction: str, minutes: int, text: str
    ) -> ev.ImportedMessage:
        return ev.ImportedMessage(
            message_id=message_id,
            whatsapp_id=wa,
            direction=direction,  # type: ignore[arg-type]
            sender=PEER if direction == "inbound" else ME,
            sender_lid=PEER_LID if direction == "inbound" else None,
            sent_at=now - timedelta(minutes=minutes),
            content=TextContent(text=text),
        )

    history = ev.HistoryImported(
        **envelope(tenant["id"], sid, f"chats/{PEER}"),
        data=ev.HistoryImportedData(
            chat=PEER,
            name="Ana",
            sync_type="initial_bootstrap",
            messages=[
                imported(uuid.uuid4(), "OLD1", "inbound", 10, "oi"),
                imported(uuid.uuid4(), "OLD2", "outbound", 9, "olá!"),
                imported(uuid.uuid4(), "LIVE1", "inbound", 0, "ainda aí?"),  # the live one again
            ],
        ),
    )
    await publish(nats_url, [live, in_group, history])

    chats_path = f"/api/v1/sessions/{sid}/chats"
    page = await until(api, f"{chats_path}/{PEER}/messages", auth, lambda b: len(b["items"]) == 3)
    assert [(m["whatsapp_id"], m["imported"]) for m in page["items"]] == [
        ("LIVE1", False),
        ("OLD2", True),
        ("OLD1", True),
    ]
    newest, mine, oldest = page["items"]
    assert (newest["sender_lid"], newest["push_name"], newest["direction"]) == (PEER_LID, "Ana", "inbound")
    assert (mine["direction"], mine["status"], mine["sender"]) == ("outbound", "sent", ME)
    detail = (await api.client.get(f"/api/v1/messages/{oldest['id']}", headers=auth)).json()
    assert [(h["status"], h["detail"]["imported"]) for h in detail["history"]] == [("received", True)]
    chats = {
        c["chat"]: c for c in (await until(api, chats_path, auth, lambda b: len(b["items"]) == 2))["items"]
    }
    assert chats[PEER]["unread_count"] == 1 and chats[PEER]["last_message"]["preview"] == "ainda aí?"
    grouped = (await api.client.get(f"/api/v1/messages/{group_id}", headers=auth)).json()
    assert (grouped["participant"], grouped["participant_lid"], grouped["sender"]) == (
        MEMBER,
        MEMBER_LID,
        MEMBER,
    )


async def test_media_sent_by_url_is_not_kept_and_received_media_is_waited_for(
    api: Api, nats_url: str
) -> None:
    """An image ZapHub sends by URL has no stored media (404, not a 409 to retry forever); a received
    image not stored yet is a 409 with Retry-After."""
    tenant, auth = await api.tenant()
    sid = (await api.session(auth))["id"]
    body = {"to": "+5511988887777", "type": "image", "url": "https://example.com/a.png"}
    sent = await api.client.post(f"/api/v1/sessions/{sid}/messages", json=body, headers=auth)
    assert sent.status_code == 202, sent.text
    by_url = await api.client.get(f"/api/v1/messages/{sent.json()['id']}/media", headers=auth)
    assert by_url.status_code == 404 and by_url.headers["content-type"] == "application/problem+json"
    image_id = uuid.uuid4()
    ref = {"direct_path": "/v/x", "media_key": "AA==", "file_sha256": "AA==", "file_enc_sha256": "AA=="}
    received = ev.MessageReceived(
        **envelope(tenant["id"], sid, f"messages/{image_id}"),
        data=ev.MessageReceivedData(
            message_id=image_id,
            whatsapp_id="IMG1",
            chat=PEER,
            sender=PEER,
            sent_at=datetime.now(UTC),
            content=ImageContent(mimetype="image/jpeg", whatsapp_media=WhatsAppMedia(**ref)),
        ),
    )
    await publish(nats_url, [received])
    await until(api, f"/api/v1/messages/{image_id}", auth, lambda b: b["type"] == "image")
    waiting = await api.client.get(f"/api/v1/messages/{image_id}/media", headers=auth)
    assert waiting.status_code == 409 and waiting.headers["retry-after"]


async def test_a_groups_subject_names_its_chat_and_a_members_message_does_not(
    api: Api, nats_url: str
) -> None:
    """group.joined lists the group as a chat named by its subject; a message from a member keeps that
    name (its push name is the sender's); group.updated with a new subject renames it."""
    tenant, auth = await api.tenant()
    sid = (await api.session(auth))["id"]
    joined = ev.GroupJoined(
        **envelope(tenant["id"], sid, f"groups/{GROUP}"),
        data=ev.GroupJoinedData(group=Group(jid=GROUP, subject="Pedidos da loja")),
    )
    message_id = uuid.uuid4()
    said = ev.MessageReceived(
        **envelope(tenant["id"], sid, f"messages/{message_id}"),
        data=ev.MessageReceivedData(
            message_id=message_id,
            whatsapp_id="GROUP1",
            chat=GROUP,
            sender=MEMBER,
            push_name="Bia",
            is_group=True,
            participant=MEMBER,
            sent_at=datetime.now(UTC),
            content=TextContent(text="bom dia"),
        ),
    )
    await publish(nats_url, [joined, said])
    path = f"/api/v1/sessions/{sid}/chats"
    page = await until(api, path, auth, lambda b: b["items"] and b["items"][0]["unread_count"] == 1)
    assert page["items"][0]["name"] == "Pedidos da loja" and page["items"][0]["is_group"]

    renamed = ev.GroupUpdated(
        **envelope(tenant["id"], sid, f"groups/{GROUP}"),
        data=ev.GroupUpdatedData(group=GROUP, by=MEMBER, subject="Pedidos e entregas"),
    )
    await publish(nats_url, [renamed])
    page = await until(api, path, auth, lambda b: b["items"][0]["name"] == "Pedidos e entregas")
    assert len(page["items"]) == 1
