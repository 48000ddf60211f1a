"""The simulated network spans host processes over NATS: a message from a session on one host reaches
a session on another, waits while that one is off line, and receipts come back the same way; presence
and typing cross it too."""

import asyncio
import base64
import hashlib
from uuid import UUID, uuid4

from zaphub_contracts.content import ImageContent, TextContent
from zaphub_contracts.events import MessageReceivedData
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import (
    ChatPresenceRequest,
    ChatPresenceState,
    HostError,
    HostOk,
    HostOp,
    PresenceRequest,
    PresenceState,
)

from .conftest import Client_, HostFactory, eventually
from .test_host import connected, connected_session, send_cmd

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def jid_of(client: Client_, session: UUID) -> str:
    return str(client.events.of("session.connected", session)[-1].data.jid)


def received(client: Client_, session: UUID) -> list[MessageReceivedData]:
    return [e.data for e in client.events.of("message.received", session)]  # type: ignore[misc]


async def test_a_message_crosses_hosts_waits_for_an_offline_recipient_and_receipts_come_back(
    client: Client_, start_host: HostFactory
) -> None:
    first = await start_host("net-1", max_concurrent_sessions=1)
    tenant_a, a = await connected_session(client)
    second = await start_host("net-2", max_concurrent_sessions=1)
    _, b = await connected_session(client)
    assert client.events.of("session.connected", b)[-1].data.host_id == "net-2"
    jid_a, jid_b = jid_of(client, a), jid_of(client, b)

    image = ImageContent(data_base64=base64.b64encode(PNG).decode(), mimetype="image/png", caption="hi")
    cmd = send_cmd(tenant_a, a, to=jid_b).model_copy(update={"content": image})
    (reply,) = await client.send(a, cmd)
    assert reply.status == "ok"
    got = await eventually(lambda: received(client, b))
    assert got[0].chat == jid_a and got[0].sender == jid_a and got[0].sender_lid
    content = got[0].content
    assert isinstance(content, ImageContent) and content.caption == "hi" and content.data_base64 is None
    assert content.whatsapp_media is not None and content.size == len(PNG)
    assert content.whatsapp_media.file_sha256 == base64.b64encode(hashlib.sha256(PNG).digest()).decode()
    await eventually(lambda: client.events.of("message.delivered", a))
    await eventually(lambda: client.events.of("message.read", a))
    assert client.events.of("message.read", a)[0].data.chat == jid_b

    # B goes off line (its host stops; the other host is full): a message to it waits.
    await second.stop()
    pending = send_cmd(tenant_a, a, to=jid_b, seq=2).model_copy(update={"content": TextContent(text="later")})
    await client.send(a, pending)
    await asyncio.sleep(1.0)  # sent, not delivered: nobody holds B's number now
    assert len(client.events.of("message.delivered", a)) == 1 and len(received(client, b)) == 1
    await start_host("net-3", max_concurrent_sessions=1)
    await connected(client, b, count=2)
    later = await eventually(lambda: [m for m in received(client, b) if m.content.type == "text"])
    assert later[0].content.text == "later"  # type: ignore[union-attr]
    await eventually(lambda: len(client.events.of("message.delivered", a)) == 2)
    assert len(received(client, b)) == 2
    await first.stop()


async def test_an_unlinked_number_is_a_contact_that_is_always_online(
    client: Client_, start_host: HostFactory
) -> None:
    await start_host("net-solo")
    tenant, session = await connected_session(client)
    await client.send(session, send_cmd(tenant, session, to=f"55119{uuid4().int % 10**8:08d}@s.whatsapp.net"))
    await eventually(lambda: client.events.of("message.read", session))


async def test_presence_and_typing_cross_hosts(client: Client_, start_host: HostFactory) -> None:
    """A session's availability reaches a session on another host as presence.updated, and its typing
    in their chat as chat.presence; the sender sees neither of its own."""
    await start_host("presence-1", max_concurrent_sessions=1)
    tenant_a, a = await connected_session(client)
    await start_host("presence-2", max_concurrent_sessions=1)
    _, b = await connected_session(client)
    assert client.events.of("session.connected", b)[-1].data.host_id == "presence-2"
    jid_a, jid_b = jid_of(client, a), jid_of(client, b)
    await asyncio.sleep(0.3)  # both numbers linked and their consumers bound

    online = PresenceRequest(tenant_id=tenant_a, session_id=a, state=PresenceState.AVAILABLE)
    assert isinstance(await client.request(a, HostOp.PRESENCE, online), HostOk)
    typing = ChatPresenceRequest(
        tenant_id=tenant_a, session_id=a, chat=jid_b, state=ChatPresenceState.COMPOSING
    )
    assert isinstance(await client.request(a, HostOp.CHAT_PRESENCE, typing), HostOk)

    (seen,) = await eventually(lambda: client.events.of("presence.updated", b))
    assert (seen.data.jid, seen.data.available, seen.data.last_seen) == (jid_a, True, None)
    (typed,) = await eventually(lambda: client.events.of("chat.presence", b))
    assert (typed.data.chat, typed.data.sender, typed.data.state) == (jid_a, jid_a, "composing")

    away = PresenceRequest(tenant_id=tenant_a, session_id=a, state=PresenceState.UNAVAILABLE)
    assert isinstance(await client.request(a, HostOp.PRESENCE, away), HostOk)
    gone = await eventually(lambda: client.events.of("presence.updated", b)[1:])
    assert gone[0].data.available is False and gone[0].data.last_seen is not None
    assert client.events.of("presence.updated", a) == client.events.of("chat.presence", a) == []


async def test_media_sent_by_url_is_downloaded_through_the_egress_policy_and_received_with_its_bytes(
    client: Client_, start_host: HostFactory
) -> None:
    """As WhatsApp's client does, the sim downloads a send's media URL (allowed here by the operator's
    ZAPHUB_EGRESS_ALLOW) and the recipient gets those bytes; the same URL without the allowance is
    refused with media_url_refused and never fetched."""
    fetched: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fetched.append(await reader.readuntil(b"\r\n\r\n"))
        head = f"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {len(PNG)}\r\n\r\n"
        writer.write(head.encode() + PNG)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/cat.png"
    try:
        await start_host("net-fetch-1", max_concurrent_sessions=1, egress_allow="127.0.0.1")
        tenant_a, a = await connected_session(client)
        await start_host("net-fetch-2", max_concurrent_sessions=1)
        tenant_b, b = await connected_session(client)
        image = ImageContent(url=url, caption="by url")
        (reply,) = await client.send(
            a, send_cmd(tenant_a, a, to=jid_of(client, b)).model_copy(update={"content": image})
        )
        assert reply.status == "ok", reply
        got = await eventually(lambda: received(client, b))
        content = got[0].content
        assert isinstance(content, ImageContent) and content.caption == "by url" and content.size == len(PNG)
        assert len(fetched) == 1

        back = ImageContent(url=url)
        (refused,) = await client.send(
            b, send_cmd(tenant_b, b, to=jid_of(client, a)).model_copy(update={"content": back})
        )
        assert isinstance(refused, HostError) and refused.reason is FailureReason.MEDIA_URL_REFUSED, refused
        assert len(fetched) == 1
    finally:
        server.close()
