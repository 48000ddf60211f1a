"""The neonize transport's inbound side from real neonize protobufs: received media handed to
`download_any`, the history sync after pairing, and the phone JID / LID / participant of senders."""

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from neonize.proto import Neonize_pb2 as nz
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from neonize.proto.waHistorySync import WAWebProtobufsHistorySync_pb2 as hs
from neonize.proto.waWeb.WAWebProtobufsWeb_pb2 import WebMessageInfo

from zaphub_contracts import events as ev
from zaphub_contracts.content import ImageContent, TextContent
from zaphub_session_host.session_events import RecentSends, SessionEvents, received_id
from zaphub_session_host.sessions import HostContext, SessionRunner
from zaphub_session_host.transport.base import (
    HistoryBatch,
    HistoryMessage,
    HistorySync,
    InboundMessage,
    NotConnected,
)
from zaphub_session_host.transport.neonize import NeonizeTransport
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.downloads import download_request
from zaphub_session_host.transport.neonize.events import content_from_message, parse_jid

PEER = "5511987654321@s.whatsapp.net"
PEER_LID = "123456789012345@lid"
MEMBER = "5511911112222@s.whatsapp.net"
MEMBER_LID = "222333444555666@lid"
GROUP = "120363000000000001@g.us"
ME = "5511900000001@s.whatsapp.net"


class Recorder:
    """The connection events this module looks at; the others are kept by name too."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("on_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name.removeprefix("on_"), args[0] if args else None))

    def named(self, name: str) -> list[Any]:
        return [arg for n, arg in self.calls if n == name]


class Published:
    """An `EventPublisher` stand-in for SessionEvents: the events it would publish, in order."""

    def __init__(self) -> None:
        self.events: list[ev.EventBase] = []

    def emit(self, event: ev.EventBase) -> None:
        self.events.append(event)


def open_conn(
    tmp_path: Path, history: HistorySync = HistorySync.RECENT
) -> tuple[NeonizeConnection, Recorder]:
    transport = NeonizeTransport(tmp_path, max_sessions=10, history_sync=history)
    rec = Recorder()
    conn = transport.open(uuid4(), uuid4(), None, rec)  # type: ignore[arg-type]
    assert isinstance(conn, NeonizeConnection)
    return conn, rec


def session_events() -> tuple[SessionEvents, Published]:
    published = Published()
    return SessionEvents(published, "/test", RecentSends(), uuid4(), uuid4()), published  # type: ignore[arg-type]


def image_message() -> wa.Message:
    return wa.Message(
        imageMessage=wa.ImageMessage(
            caption="foto",
            mimetype="image/jpeg",
            fileLength=2048,
            directPath="/v/t62.7118-24/abc",
            mediaKey=b"k" * 32,
            fileSHA256=b"s" * 32,
            fileEncSHA256=b"e" * 32,
        )
    )


def test_received_media_is_handed_to_download_any_as_whatsapp_sent_it() -> None:
    """The message rebuilt for `download_any` holds the direct path, keys, hashes, length and type of
    the received one; text has nothing to download."""
    content = content_from_message(image_message())
    assert isinstance(content, ImageContent)
    request = download_request(content)
    assert request is not None and request.HasField("imageMessage")
    got, sent = request.imageMessage, image_message().imageMessage
    for field in ("directPath", "mediaKey", "fileSHA256", "fileEncSHA256", "fileLength", "mimetype"):
        assert getattr(got, field) == getattr(sent, field), field
    assert download_request(TextContent(text="oi")) is None
    doc = content_from_message(
        wa.Message(documentMessage=wa.DocumentMessage(fileName="nf.pdf", directPath="/v/d", mediaKey=b"m"))
    )
    assert doc is not None
    doc_request = download_request(doc)
    assert doc_request is not None and doc_request.documentMessage.mediaKey == b"m"


async def test_download_uses_neonizes_download_any_and_needs_a_connection(tmp_path: Path) -> None:
    """A connected session downloads through `client.download_any` (WhatsApp stood in for); offline it is
    a NotConnected, which the media saver logs and drops."""
    conn, _ = open_conn(tmp_path)
    content = content_from_message(image_message())
    assert content is not None
    message = InboundMessage("3EB0IMG", PEER, PEER, datetime.now(UTC), content)
    with pytest.raises(NotConnected):
        await conn.download(message)
    asked: list[wa.Message] = []

    async def download_any(msg: wa.Message) -> bytes:  # WhatsApp's CDN and whatsmeow's decryption
        asked.append(msg)
        return b"\xff\xd8jpeg bytes"

    conn.client.download_any = download_any  # type: ignore[method-assign]
    conn._online = True
    assert await conn.download(message) == b"\xff\xd8jpeg bytes"
    assert asked[0].imageMessage.directPath == "/v/t62.7118-24/abc"
    assert (
        await conn.download(InboundMessage("3EB0T", PEER, PEER, datetime.now(UTC), TextContent(text="x")))
        is None
    )
    await conn.close()


def test_history_sync_setting_is_what_the_device_asks_for_at_pairing(tmp_path: Path) -> None:
    """`full` asks WhatsApp for a full sync (`requireFullSync`); `recent` and `off` keep its default."""
    for setting, full in ((HistorySync.FULL, True), (HistorySync.RECENT, False), (HistorySync.OFF, False)):
        conn, _ = open_conn(tmp_path / setting.value, setting)
        props = conn.client.device_props
        assert props is not None and props.requireFullSync is full and props.os == "Neonize"


def _web(
    key_id: str, msg: wa.Message, at: int, *, from_me: bool = False, participant: str = ""
) -> hs.HistorySyncMsg:
    info = WebMessageInfo(
        key=MessageKey(remoteJID="x", fromMe=from_me, ID=key_id, participant=participant),
        message=msg,
        messageTimestamp=at,
        pushName="" if from_me else "Ana",
    )
    return hs.HistorySyncMsg(message=info)


def history_event() -> nz.HistorySync:
    one_to_one = hs.Conversation(
        ID=PEER_LID,
        pnJID=PEER,
        messages=[  # newest first, as WhatsApp sends them
            _web("H3", wa.Message(conversation="até amanhã"), 1_700_000_300, from_me=True),
            _web("H2", image_message(), 1_700_000_200),
            _web("H1", wa.Message(conversation="oi"), 1_700_000_100),
            _web("HX", wa.Message(protocolMessage=wa.ProtocolMessage()), 1_700_000_050),
        ],
    )
    group = hs.Conversation(
        ID=GROUP,
        name="Loja",
        messages=[_web("G1", wa.Message(conversation="bom dia"), 1_700_000_400, participant=MEMBER_LID)],
    )
    status = hs.Conversation(ID="status@broadcast", messages=[_web("S1", wa.Message(conversation="s"), 1)])
    data = hs.HistorySync(
        syncType=hs.HistorySync.INITIAL_BOOTSTRAP,
        conversations=[one_to_one, group, status],
        phoneNumberToLidMappings=[hs.PhoneNumberToLIDMapping(pnJID=MEMBER, lidJID=MEMBER_LID)],
    )
    return nz.HistorySync(Data=data)


async def test_history_sync_becomes_chats_of_messages_oldest_first(tmp_path: Path) -> None:
    """Each conversation of a HistorySync is one batch: LID-addressed chats by phone number with the LID
    beside, both directions oldest first, groups with their participant's number and LID; statuses and
    kinds ZapHub does not carry are left out."""
    conn, rec = open_conn(tmp_path)
    conn.handle(history_event())
    chat, group = rec.named("history")
    assert isinstance(chat, HistoryBatch) and isinstance(group, HistoryBatch)
    assert (chat.chat, chat.is_group, chat.sync_type) == (PEER, False, "initial_bootstrap")
    assert [m.whatsapp_id for m in chat.messages] == ["H1", "H2", "H3"]
    first, image, mine = chat.messages
    assert (first.sender, first.sender_lid, first.push_name, first.from_me) == (PEER, PEER_LID, "Ana", False)
    assert first.content == TextContent(text="oi")
    assert first.sent_at == datetime.fromtimestamp(1_700_000_100, UTC)
    assert isinstance(image.content, ImageContent) and image.content.whatsapp_media is not None
    assert mine.from_me and mine.sender_lid is None and mine.push_name is None
    assert (group.chat, group.is_group, group.name) == (GROUP, True, "Loja")
    (member,) = group.messages
    assert (member.sender, member.sender_lid) == (MEMBER, MEMBER_LID)
    await conn.close()


def test_history_is_imported_under_the_ids_live_messages_get_and_never_as_received() -> None:
    """`history.imported` events carry at most HISTORY_BATCH messages each, an inbound one under the id
    its live `message.received` would have, outbound ones from the account; nothing is `message.received`."""
    events, published = session_events()
    at = datetime.now(UTC)
    messages = tuple(
        HistoryMessage(
            f"W{i}",
            from_me=i % 2 == 1,
            sender=MEMBER,
            sent_at=at,
            content=TextContent(text=str(i)),
            sender_lid=MEMBER_LID,
        )
        for i in range(ev.HISTORY_BATCH + 5)
    )
    events.history(HistoryBatch(GROUP, messages, name="Loja", is_group=True), own_jid=ME)
    assert all(isinstance(e, ev.HistoryImported) for e in published.events) and len(published.events) == 2
    first = published.events[0]
    assert isinstance(first, ev.HistoryImported) and not first.webhooks
    assert len(first.data.messages) == ev.HISTORY_BATCH and first.data.chat == GROUP
    inbound, outbound = first.data.messages[0], first.data.messages[1]
    assert inbound.message_id == received_id(events.session_id, "W0") and inbound.direction == "inbound"
    assert (inbound.participant, inbound.participant_lid) == (MEMBER, MEMBER_LID)
    assert outbound.direction == "outbound" and outbound.sender == ME and outbound.participant is None


async def test_group_message_carries_participant_phone_jid_and_lid(tmp_path: Path) -> None:
    """A group message sent by a LID-addressed member reports the group as chat and the member's number
    and LID as sender and participant."""
    conn, rec = open_conn(tmp_path)
    source = nz.MessageSource(Chat=parse_jid(GROUP), Sender=parse_jid(MEMBER_LID), IsGroup=True)
    source.SenderAlt.CopyFrom(parse_jid(MEMBER))
    info = nz.MessageInfo(MessageSource=source, ID="3EB0GRP", Pushname="Bia", Timestamp=1_700_000_000)
    conn.handle(nz.Message(Info=info, Message=wa.Message(conversation="olá grupo")))
    (message,) = rec.named("message")
    assert isinstance(message, InboundMessage)
    assert (message.chat, message.sender, message.sender_lid, message.is_group) == (
        GROUP,
        MEMBER,
        MEMBER_LID,
        True,
    )
    events, published = session_events()
    events.message(message)
    (received,) = published.events
    assert isinstance(received, ev.MessageReceived)
    d = received.data
    assert (d.participant, d.participant_lid, d.sender_lid, d.push_name) == (
        MEMBER,
        MEMBER_LID,
        MEMBER_LID,
        "Bia",
    )
    await conn.close()
    await asyncio.sleep(0)


def test_base64_of_media_keys_round_trips() -> None:
    """The contract's base64 media key is the bytes WhatsApp gave (what download_any decrypts with)."""
    content = content_from_message(image_message())
    assert isinstance(content, ImageContent) and content.whatsapp_media is not None
    assert base64.b64decode(content.whatsapp_media.media_key) == b"k" * 32


def _runner(history: HistorySync, max_messages: int) -> tuple[SessionRunner, Published]:
    published = Published()
    ctx = HostContext(
        host_id="h1",
        source="/test",
        nc=None,  # type: ignore[arg-type]  # on_history reaches nothing but the publisher
        transport=None,  # type: ignore[arg-type]
        auth=None,  # type: ignore[arg-type]
        publisher=published,  # type: ignore[arg-type]
        sent_log=None,  # type: ignore[arg-type]
        requests=None,  # type: ignore[arg-type]
        history_sync=history,
        history_max_messages=max_messages,
    )
    return SessionRunner(ctx, uuid4(), uuid4()), published


def test_a_session_imports_at_most_its_history_bound_newest_kept_and_nothing_when_off() -> None:
    """Past ZAPHUB_HISTORY_MAX_MESSAGES a session's history sync is cut (the newest of a chunk kept,
    later chunks dropped); with ZAPHUB_HISTORY_SYNC=off nothing is imported at all."""
    at = datetime.now(UTC)
    batch = HistoryBatch(
        PEER, tuple(HistoryMessage(f"W{i}", False, PEER, at, TextContent(text=str(i))) for i in range(5))
    )
    runner, published = _runner(HistorySync.RECENT, 3)
    runner.on_history(batch)
    runner.on_history(batch)
    (event,) = published.events
    assert isinstance(event, ev.HistoryImported)
    assert [m.whatsapp_id for m in event.data.messages] == ["W2", "W3", "W4"]
    off, nothing = _runner(HistorySync.OFF, 100)
    off.on_history(batch)
    assert nothing.events == []
