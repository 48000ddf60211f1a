"""The neonize contacts and presence capabilities offline: neonize's own protobufs mapped to contacts,
and the calls each capability makes on the client, with a stand-in for the Go client."""

from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from neonize.exc import GetProfilePictureError, IsOnWhatsAppError
from neonize.proto import Neonize_pb2 as nz
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.proto.waVnameCert.WAWebProtobufsVnameCert_pb2 import VerifiedNameCertificate
from neonize.utils.enum import BlocklistAction, ChatPresence, ChatPresenceMedia, Presence, ReceiptType

from zaphub_contracts.host import ChatPresenceState, Contact, ContactCheck, PresenceState
from zaphub_session_host.transport.base import NotConnected
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.contacts import blocked_jids, check_results, contact_from
from zaphub_session_host.transport.neonize.events import parse_jid

from .test_neonize_transport import PEER, PEER_LID, Recorder, message_event

OTHER = "5511911112222@s.whatsapp.net"


def test_is_on_whatsapp_answers_map_to_one_result_per_number_in_order() -> None:
    """Each number gets its answer by query; one WhatsApp does not know is off WhatsApp."""
    answers = [
        nz.IsOnWhatsAppResponse(Query="+999123456", IsIn=False),
        nz.IsOnWhatsAppResponse(Query="+5511987654321", IsIn=True, JID=parse_jid(PEER)),
    ]
    assert check_results(["5511987654321", "999123456", "5511000000000"], answers) == [
        ContactCheck(number="5511987654321", on_whatsapp=True, jid=PEER),
        ContactCheck(number="999123456", on_whatsapp=False),
        ContactCheck(number="5511000000000", on_whatsapp=False),
    ]


def test_a_profile_maps_from_the_store_user_info_and_picture() -> None:
    """Name from the address book, about from the status, business from the verified name, the
    picture URL, and the LID; a contact not in the store takes the verified name."""
    info = nz.ContactInfo(Found=True, FirstName="Ana", FullName="Ana Souza", PushName="Aninha")
    details = VerifiedNameCertificate.Details(verifiedName="Loja da Ana")
    user = nz.UserInfo(VerifiedName=nz.VerifiedName(Details=details), Status="Open 9-18")
    picture = nz.ProfilePictureInfo(URL="https://pps.whatsapp.net/v/abc.jpg", ID="1")
    contact = contact_from(parse_jid(PEER), info, user, picture, parse_jid(PEER_LID))
    assert contact == Contact(
        jid=PEER,
        lid=PEER_LID,
        name="Ana Souza",
        push_name="Aninha",
        about="Open 9-18",
        business=True,
        business_name="Loja da Ana",
        picture_url="https://pps.whatsapp.net/v/abc.jpg",
    )
    plain = contact_from(parse_jid(OTHER), nz.ContactInfo(Found=False), nz.UserInfo(Status=""), None, None)
    assert plain == Contact(jid=OTHER)


def test_a_blocklist_maps_to_its_jids() -> None:
    blocklist = nz.Blocklist(DHash="x", JIDs=[parse_jid(PEER), parse_jid(OTHER)])
    assert blocked_jids(blocklist) == [PEER, OTHER]


class StubClient:
    """Stands in for neonize's client: records each call and answers like whatsmeow would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.picture_error = False

    async def is_on_whatsapp(self, *numbers: str) -> list[nz.IsOnWhatsAppResponse]:
        self.calls.append(("is_on_whatsapp", numbers))
        if "+0" in numbers:
            raise IsOnWhatsAppError("websocket not connected")
        return [nz.IsOnWhatsAppResponse(Query=n, IsIn=True, JID=parse_jid(n.lstrip("+"))) for n in numbers]

    async def get_lid_from_pn(self, jid: nz.JID) -> nz.JID:
        self.calls.append(("get_lid_from_pn", jid.User))
        return parse_jid(PEER_LID)

    async def get_user_info(self, *jids: nz.JID) -> list[nz.GetUserInfoSingleReturnFunction]:
        self.calls.append(("get_user_info", [j.User for j in jids]))
        return [nz.GetUserInfoSingleReturnFunction(JID=jids[0], UserInfo=nz.UserInfo(Status="hi"))]

    async def get_profile_picture(self, jid: nz.JID) -> nz.ProfilePictureInfo:
        self.calls.append(("get_profile_picture", jid.User))
        if self.picture_error:
            raise GetProfilePictureError("hidden")
        return nz.ProfilePictureInfo(URL="https://pps.whatsapp.net/p.jpg")

    async def get_blocklist(self) -> nz.Blocklist:
        return nz.Blocklist(JIDs=[parse_jid(PEER)])

    async def update_blocklist(self, jid: nz.JID, action: BlocklistAction) -> nz.Blocklist:
        self.calls.append(("update_blocklist", (jid.User, action)))
        return nz.Blocklist(JIDs=[] if action is BlocklistAction.UNBLOCK else [jid])

    async def send_presence(self, presence: Presence) -> None:
        self.calls.append(("send_presence", presence))

    async def send_chat_presence(self, jid: nz.JID, state: ChatPresence, media: ChatPresenceMedia) -> None:
        self.calls.append(("send_chat_presence", (jid.User, state, media)))

    async def mark_read(self, *ids: str, chat: nz.JID, sender: nz.JID, receipt: ReceiptType) -> None:
        self.calls.append(("mark_read", (ids, chat.User, sender.User, receipt)))

    class contact:
        @staticmethod
        async def get_contact(jid: nz.JID) -> nz.ContactInfo:
            return nz.ContactInfo(Found=True, PushName="Ana")


@pytest.fixture
async def online(tmp_path: Path) -> tuple[NeonizeConnection, StubClient]:
    """A connection that went live, then given the stand-in client."""
    transport = NeonizeTransport(tmp_path, max_sessions=10)
    conn = transport.open(uuid4(), uuid4(), None, Recorder())
    conn.client.me = nz.Device(JID=parse_jid("5511900000001:7@s.whatsapp.net"), PushName="Loja")
    await conn.handle(nz.Connected(status=True))  # type: ignore[misc]
    stub = StubClient()
    conn.client = stub  # type: ignore[assignment]
    return conn, stub


async def test_contacts_calls_map_to_the_clients_methods(
    online: tuple[NeonizeConnection, StubClient],
) -> None:
    """Checks ask with +numbers, a profile gathers LID, user info, store and picture (a hidden
    picture is none), block and unblock pass the action, and whatsmeow's errors become named ones."""
    conn, stub = online
    checks = await conn.contacts.check(["5511987654321"])
    assert checks == [ContactCheck(number="5511987654321", on_whatsapp=True, jid=PEER)]
    assert stub.calls[0] == ("is_on_whatsapp", ("+5511987654321",))
    with pytest.raises(NotConnected):
        await conn.contacts.check(["0"])

    stub.picture_error = True
    contact = await conn.contacts.info(PEER)
    assert (contact.jid, contact.lid, contact.about, contact.name, contact.picture_url) == (
        PEER,
        PEER_LID,
        "hi",
        "Ana",
        None,
    )
    assert await conn.contacts.blocklist() == [PEER]
    assert await conn.contacts.set_blocked(OTHER, True) == [OTHER]
    assert await conn.contacts.set_blocked(OTHER, False) == []
    assert [c for c in stub.calls if c[0] == "update_blocklist"] == [
        ("update_blocklist", ("5511911112222", BlocklistAction.BLOCK)),
        ("update_blocklist", ("5511911112222", BlocklistAction.UNBLOCK)),
    ]


async def test_presence_typing_and_read_marks_map_to_the_clients_methods(
    online: tuple[NeonizeConnection, StubClient],
) -> None:
    """Availability and typing map to neonize's enums (recording is composing with audio); a read
    mark sends a read receipt for the chat's received messages, then none are left."""
    conn, stub = online
    await conn.presence.set_presence(PresenceState.UNAVAILABLE)
    await conn.presence.set_chat_presence(PEER, ChatPresenceState.RECORDING)
    await conn.presence.set_chat_presence(PEER, ChatPresenceState.PAUSED)
    assert stub.calls == [
        ("send_presence", Presence.UNAVAILABLE),
        (
            "send_chat_presence",
            (
                "5511987654321",
                ChatPresence.CHAT_PRESENCE_COMPOSING,
                ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO,
            ),
        ),
        (
            "send_chat_presence",
            ("5511987654321", ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
        ),
    ]
    stub.calls.clear()
    conn.handle(message_event(wa.Message(conversation="oi")))
    assert await conn.presence.mark_read(PEER, None) == ["3EB0ABCDEF"]
    assert stub.calls == [
        ("mark_read", (("3EB0ABCDEF",), "5511987654321", "5511987654321", ReceiptType.READ))
    ]
    assert await conn.presence.mark_read(PEER, None) == []


async def test_capabilities_refuse_while_not_connected(tmp_path: Path) -> None:
    """Before the connection is live every call is NotConnected, without touching the Go client."""
    conn = NeonizeTransport(tmp_path, max_sessions=10).open(uuid4(), uuid4(), None, Recorder())
    with pytest.raises(NotConnected):
        await conn.contacts.check(["5511987654321"])
    with pytest.raises(NotConnected):
        await conn.presence.set_presence(PresenceState.AVAILABLE)


async def test_contacts_presence_and_typing_events_map_from_neonizes_events(tmp_path: Path) -> None:
    """Presence becomes available/unavailable with last seen; chat presence composing, recording
    (composing with audio) and paused, in the chat it names."""
    rec = Recorder()
    conn = NeonizeTransport(tmp_path, max_sessions=10).open(uuid4(), uuid4(), None, rec)
    conn.client.me = nz.Device(JID=parse_jid("5511900000001:7@s.whatsapp.net"), PushName="Loja")
    await conn.handle(nz.Connected(status=True))  # type: ignore[misc]
    conn.handle(nz.Presence(From=parse_jid(PEER), Unavailable=True, LastSeen=1_700_000_000))
    conn.handle(nz.Presence(From=parse_jid(PEER), Unavailable=False))
    source = nz.MessageSource(Chat=parse_jid(PEER), Sender=parse_jid(PEER))
    for state, media in (
        (nz.ChatPresence.COMPOSING, nz.ChatPresence.TEXT),
        (nz.ChatPresence.COMPOSING, nz.ChatPresence.AUDIO),
        (nz.ChatPresence.PAUSED, nz.ChatPresence.TEXT),
    ):
        conn.handle(nz.ChatPresence(MessageSource=source, State=state, Media=media))
    gone, back = (args[0] for args in rec.named("presence"))
    assert (gone.jid, gone.available, gone.last_seen.timestamp()) == (PEER, False, 1_700_000_000)  # type: ignore[attr-defined]
    assert (back.available, back.last_seen) == (True, None)  # type: ignore[attr-defined]
    states = [(p.chat, p.state) for (p,) in rec.named("update")]  # type: ignore[attr-defined]
    assert states == [(PEER, "composing"), (PEER, "recording"), (PEER, "paused")]
