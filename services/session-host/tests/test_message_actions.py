"""Edits and revokes on both transports: the protobufs neonize would send and the contents it maps
from real neonize messages, and the simulator's edit window through a real host."""

from datetime import UTC, datetime, timedelta

from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa

from zaphub_contracts.content import EditContent, RevokeContent
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.host import HostError, HostOk
from zaphub_session_host.transport.neonize.events import content_from_message, inbound_from_event
from zaphub_session_host.transport.neonize.messages import Quoted, build_message

from .conftest import Client_, HostFactory, eventually
from .test_host import connected_session, send_cmd
from .test_neonize_transport import PEER, message_event

PROTO = wa.ProtocolMessage


def test_a_text_edit_is_whatsapps_edit_protocol_message() -> None:
    """An edit wraps a MESSAGE_EDIT protocol message keyed by the original id, with the new text."""
    msg = build_message(EditContent(message_id="3EB0ORIGINAL", text="fixed"), PEER)
    proto = msg.editedMessage.message.protocolMessage
    assert proto.type == PROTO.MESSAGE_EDIT
    assert (proto.key.ID, proto.key.fromMe, proto.key.remoteJID) == ("3EB0ORIGINAL", True, PEER)
    assert proto.editedMessage.conversation == "fixed"


def test_a_caption_edit_carries_the_original_media_with_the_new_caption() -> None:
    """A caption edit resends the original image message with the new caption."""
    original = wa.Message(
        imageMessage=wa.ImageMessage(caption="old", URL="https://mmg/x", mimetype="image/jpeg")
    )
    msg = build_message(
        EditContent(message_id="3EB0IMG", caption="new"), PEER, quoted=Quoted(sender=PEER, message=original)
    )
    edited = msg.editedMessage.message.protocolMessage.editedMessage.imageMessage
    assert (edited.caption, edited.URL, edited.mimetype) == ("new", "https://mmg/x", "image/jpeg")


def test_a_revoke_is_a_revoke_protocol_message_for_our_own_message() -> None:
    """A revoke is a REVOKE protocol message keyed by our own message's id."""
    msg = build_message(RevokeContent(message_id="3EB0GONE"), PEER)
    assert msg.protocolMessage.type == PROTO.REVOKE
    assert (msg.protocolMessage.key.ID, msg.protocolMessage.key.fromMe) == ("3EB0GONE", True)


def test_a_contacts_edit_and_revoke_map_to_contents_and_status_updates_are_no_chat() -> None:
    """Inbound MESSAGE_EDIT and REVOKE protocol messages become EditContent and RevokeContent; a
    status@broadcast message is not reported."""
    key = MessageKey(ID="3EB0THEIRS", fromMe=False, remoteJID=PEER)
    edit = wa.Message(
        protocolMessage=PROTO(type=PROTO.MESSAGE_EDIT, key=key, editedMessage=wa.Message(conversation="typo"))
    )
    assert content_from_message(edit) == EditContent(message_id="3EB0THEIRS", text="typo")
    revoke = wa.Message(protocolMessage=PROTO(type=PROTO.REVOKE, key=key))
    assert content_from_message(revoke) == RevokeContent(message_id="3EB0THEIRS", from_me=False)
    assert (
        content_from_message(wa.Message(protocolMessage=PROTO(type=PROTO.HISTORY_SYNC_NOTIFICATION))) is None
    )
    status = message_event(wa.Message(conversation="my status"), chat="status@broadcast")
    assert inbound_from_event(status) is None


async def test_sim_edits_and_revokes_reach_the_contact_and_old_edits_are_refused(
    client: Client_, start_host: HostFactory
) -> None:
    """An edit and a revoke go out in order as sends: the sender reports message.edited/revoked of its
    own message, the receiving session those of the contact; an edit older than 15 minutes fails
    with edit_window_expired."""
    await start_host()
    tenant, session = await connected_session(client)
    _, peer = await connected_session(client)
    peer_jid = client.events.of("session.connected", peer)[0].data.jid
    original = send_cmd(tenant, session, to=peer_jid, seq=1)
    sent = await client.send_one(session, original)
    assert isinstance(sent, HostOk) and sent.whatsapp_id
    edit = send_cmd(tenant, session, to=peer_jid, seq=2).model_copy(
        update={"content": EditContent(message_id=sent.whatsapp_id, text="olá!", sent_at=sent.sent_at)}
    )
    revoke = send_cmd(tenant, session, to=peer_jid, seq=3).model_copy(
        update={"content": RevokeContent(message_id=sent.whatsapp_id)}
    )
    assert all(isinstance(r, HostOk) for r in await client.send(session, edit, revoke))

    edited = await eventually(lambda: client.events.of("message.edited", session))
    assert edited[0].data.message_id == original.message_id and edited[0].data.from_me
    assert edited[0].data.text == "olá!"
    theirs = await eventually(lambda: client.events.of("message.edited", peer))
    assert theirs[0].data.whatsapp_id == sent.whatsapp_id and not theirs[0].data.from_me
    revoked = await eventually(lambda: client.events.of("message.revoked", peer))
    assert revoked[0].data.whatsapp_id == sent.whatsapp_id
    assert client.events.of("message.revoked", session)[0].data.from_me
    assert [e.data.content.type for e in client.events.of("message.received", peer)] == ["text"]

    stale = send_cmd(tenant, session, to=peer_jid, seq=4).model_copy(
        update={
            "content": EditContent(
                message_id=sent.whatsapp_id, text="late", sent_at=datetime.now(UTC) - timedelta(minutes=16)
            )
        }
    )
    refused = await client.send_one(session, stale)
    assert isinstance(refused, HostError) and refused.reason is FailureReason.EDIT_WINDOW_EXPIRED
