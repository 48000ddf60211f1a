"""Contacts, blocklist, presence and read marks as host requests, on the simulator against a real
nats-server."""

from uuid import UUID

from zaphub_contracts.content import TextContent
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import (
    BlocklistChange,
    BlocklistReply,
    BlocklistUpdate,
    ChatPresenceRequest,
    ChatPresenceState,
    ContactReply,
    ContactRequest,
    ContactsCheckReply,
    ContactsCheckRequest,
    ContactsReply,
    HostError,
    HostOk,
    HostOp,
    MarkReadReply,
    MarkReadRequest,
    PresenceRequest,
    PresenceState,
    SessionControl,
)
from zaphub_session_host.transport.sim.contacts import sim_contact

from .conftest import Client_, HostFactory, eventually
from .test_host import connected_session, send_cmd


async def ask(client: Client_, session: UUID, op: HostOp, body: object, reply: type) -> object:
    msg = await client.bus.request(f"zaphub.v1.host.{session}.{op}", body, timeout=5.0)
    if b'"status":"error"' in msg.data:
        return HostError.model_validate_json(msg.data)
    return reply.model_validate_json(msg.data)


async def test_contacts_check_tells_numbers_on_and_off_whatsapp(
    client: Client_, start_host: HostFactory
) -> None:
    """Numbers starting 999 are not on WhatsApp; others answer their JID and a stable LID, in order."""
    await start_host()
    tenant, session = await connected_session(client)
    body = ContactsCheckRequest(tenant_id=tenant, session_id=session, numbers=["5511988887777", "999123456"])
    reply = await ask(client, session, HostOp.CONTACTS_CHECK, body, ContactsCheckReply)
    assert isinstance(reply, ContactsCheckReply)
    on, off = reply.results
    assert (on.number, on.on_whatsapp, on.jid) == ("5511988887777", True, "5511988887777@s.whatsapp.net")
    assert on.lid == sim_contact("5511988887777").lid and on.lid and on.lid.endswith("@lid")
    assert (off.number, off.on_whatsapp, off.jid, off.lid) == ("999123456", False, None, None)

    bad = ContactsCheckRequest(tenant_id=tenant, session_id=session, numbers=["12ab"])
    refused = await ask(client, session, HostOp.CONTACTS_CHECK, bad, ContactsCheckReply)
    assert isinstance(refused, HostError) and refused.reason is FailureReason.INVALID_PAYLOAD


async def test_contact_info_and_the_contacts_known_are_deterministic(
    client: Client_, start_host: HostFactory
) -> None:
    """A profile follows from the number; another session online is a known contact, with its own
    push name and LID; a 999 number is not on WhatsApp."""
    await start_host()
    tenant, session = await connected_session(client)
    _, other = await connected_session(client)
    other_jid = client.events.of("session.connected", other)[0].data.jid

    body = ContactRequest(tenant_id=tenant, session_id=session, jid="5511988887777@s.whatsapp.net")
    reply = await ask(client, session, HostOp.CONTACT_INFO, body, ContactReply)
    assert isinstance(reply, ContactReply) and reply.contact == sim_contact("5511988887777")
    missing = ContactRequest(tenant_id=tenant, session_id=session, jid="999123456@s.whatsapp.net")
    refused = await ask(client, session, HostOp.CONTACT_INFO, missing, ContactReply)
    assert isinstance(refused, HostError) and refused.reason is FailureReason.RECIPIENT_NOT_ON_WHATSAPP

    known = await ask(
        client,
        session,
        HostOp.CONTACTS_LIST,
        SessionControl(tenant_id=tenant, session_id=session),
        ContactsReply,
    )
    assert isinstance(known, ContactsReply)
    peer = next(c for c in known.contacts if c.jid == other_jid)
    other_connected = client.events.of("session.connected", other)[0].data
    assert (peer.lid, peer.name) == (other_connected.lid, other_connected.push_name)


async def test_block_and_unblock_change_the_blocklist(client: Client_, start_host: HostFactory) -> None:
    """A blocked JID is listed until it is unblocked; blocking twice lists it once."""
    await start_host()
    tenant, session = await connected_session(client)
    jid = "5511988887777@s.whatsapp.net"
    for _ in range(2):
        block = BlocklistUpdate(tenant_id=tenant, session_id=session, jid=jid, change=BlocklistChange.BLOCK)
        reply = await ask(client, session, HostOp.BLOCKLIST_UPDATE, block, BlocklistReply)
        assert isinstance(reply, BlocklistReply) and reply.jids == [jid]
    listed = await ask(
        client,
        session,
        HostOp.BLOCKLIST,
        SessionControl(tenant_id=tenant, session_id=session),
        BlocklistReply,
    )
    assert isinstance(listed, BlocklistReply) and listed.jids == [jid]
    unblock = BlocklistUpdate(tenant_id=tenant, session_id=session, jid=jid, change=BlocklistChange.UNBLOCK)
    after = await ask(client, session, HostOp.BLOCKLIST_UPDATE, unblock, BlocklistReply)
    assert isinstance(after, BlocklistReply) and after.jids == []


async def test_presence_and_read_marks_need_a_connected_session(
    client: Client_, start_host: HostFactory
) -> None:
    """Presence and typing are accepted while connected; a read mark takes the chat's received
    messages once; after logout each answers session_logged_out."""
    await start_host()
    tenant, session = await connected_session(client)
    sender_tenant, sender = await connected_session(client)
    me = client.events.of("session.connected", session)[0].data.jid
    sender_jid = client.events.of("session.connected", sender)[0].data.jid

    presence = PresenceRequest(tenant_id=tenant, session_id=session, state=PresenceState.AVAILABLE)
    assert isinstance(await ask(client, session, HostOp.PRESENCE, presence, HostOk), HostOk)
    typing = ChatPresenceRequest(
        tenant_id=tenant, session_id=session, chat=sender_jid, state=ChatPresenceState.COMPOSING
    )
    assert isinstance(await ask(client, session, HostOp.CHAT_PRESENCE, typing, HostOk), HostOk)

    first, second = (send_cmd(sender_tenant, sender, to=me, seq=seq) for seq in (1, 2))
    first = first.model_copy(update={"content": TextContent(text="one")})
    for cmd in (first, second):
        assert isinstance(await client.send_one(sender, cmd), HostOk)
    received = await eventually(lambda: len(client.events.of("message.received", session)) >= 2 or None)
    assert received
    ids = [e.data.whatsapp_id for e in client.events.of("message.received", session)]

    read = MarkReadRequest(tenant_id=tenant, session_id=session, chat=sender_jid)
    marked = await ask(client, session, HostOp.MARK_READ, read, MarkReadReply)
    assert isinstance(marked, MarkReadReply) and marked.marked == ids
    again = await ask(client, session, HostOp.MARK_READ, read, MarkReadReply)
    assert isinstance(again, MarkReadReply) and again.marked == []

    assert isinstance(
        await client.request(session, HostOp.LOGOUT, SessionControl(tenant_id=tenant, session_id=session)),
        HostOk,
    )
    refused = await ask(client, session, HostOp.PRESENCE, presence, HostOk)
    assert isinstance(refused, HostError) and refused.reason is FailureReason.SESSION_LOGGED_OUT
