"""The neonize transport offline: real neonize clients and protobuf events, no network, no WhatsApp."""

import asyncio
import base64
import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from neonize.aioze.client import NewAClient
from neonize.proto import Neonize_pb2 as nz
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E import WAWebProtobufsE2E_pb2 as wa
from pydantic import TypeAdapter, ValidationError

from zaphub_contracts.content import (
    AudioContent,
    ContactContent,
    DocumentContent,
    ImageContent,
    LocationContent,
    MessageContent,
    ReactionContent,
    StickerContent,
    TextContent,
    VideoContent,
)
from zaphub_session_host.media_fetch import MediaBytes
from zaphub_session_host.transport.base import (
    Identity,
    InboundMessage,
    InvalidContent,
    LoggedOut,
    MediaToolsMissing,
    NotConnected,
    Receipt,
    ReceiptKind,
    RecipientNotOnWhatsApp,
    TransientSendError,
)
from zaphub_session_host.transport.neonize import NeonizeTransport, gate
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.errors import map_send_error
from zaphub_session_host.transport.neonize.events import content_from_message, parse_jid
from zaphub_session_host.transport.neonize.media import (
    missing_media_tools,
    to_sticker,
    to_voice_note,
)
from zaphub_session_host.transport.neonize.messages import Media, Quoted, build_message
from zaphub_session_host.transport.neonize.store_snapshot import seed_sqlite, snapshot_sqlite

CONTENT: TypeAdapter[MessageContent] = TypeAdapter(MessageContent)
PEER = "5511987654321@s.whatsapp.net"
PEER_LID = "123456789012345@lid"


class Recorder:
    """A `ConnectionEvents` that keeps every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...]]] = []

    def _add(self, name: str, *args: object) -> None:
        self.calls.append((name, args))

    def on_qr(self, qr: str, expires_at: datetime) -> None:
        self._add("qr", qr, expires_at)

    def on_connected(self, identity: Identity) -> None:
        self._add("connected", identity)

    def on_disconnected(self, reason: str, will_reconnect: bool) -> None:
        self._add("disconnected", reason, will_reconnect)

    def on_logged_out(self, reason: str) -> None:
        self._add("logged_out", reason)

    def on_auth_changed(self, auth_data: bytes | None) -> None:
        self._add("auth", auth_data)

    def on_message(self, message: InboundMessage) -> None:
        self._add("message", message)

    def on_receipt(self, receipt: Receipt) -> None:
        self._add("receipt", receipt)

    def on_update(self, update: object) -> None:
        self._add("update", update)

    def on_presence(self, presence: object) -> None:
        self._add("presence", presence)

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [args for n, args in self.calls if n == name]


def jid(value: str) -> nz.JID:
    return parse_jid(value)


def message_event(
    msg: wa.Message, *, sender: str = PEER, alt: str | None = None, **src: object
) -> nz.Message:
    source = nz.MessageSource(Chat=jid(src.pop("chat", sender)), Sender=jid(sender), **src)  # type: ignore[arg-type]
    if alt is not None:
        source.SenderAlt.CopyFrom(jid(alt))
    info = nz.MessageInfo(MessageSource=source, ID="3EB0ABCDEF", Pushname="Ana", Timestamp=1_700_000_000)
    return nz.Message(Info=info, Message=msg)


def upload() -> nz.UploadResponse:
    return nz.UploadResponse(
        url="https://mmg.whatsapp.net/x",
        DirectPath="/v/t62/abc",
        MediaKey=b"k" * 32,
        FileEncSHA256=b"e" * 32,
        FileSHA256=b"s" * 32,
        FileLength=1234,
    )


@pytest.fixture
def transport(tmp_path: Path) -> NeonizeTransport:
    return NeonizeTransport(tmp_path, max_sessions=10)


def open_conn(transport: NeonizeTransport, auth: bytes | None = None) -> tuple[NeonizeConnection, Recorder]:
    rec = Recorder()
    return transport.open(uuid4(), uuid4(), auth, rec), rec


async def test_each_session_gets_its_own_real_client_and_store_file(transport: NeonizeTransport) -> None:
    """Several sessions in one process each get a real NewAClient on their own SQLite store path."""
    tenant = uuid4()
    conns = [transport.open(tenant, uuid4(), None, Recorder()) for _ in range(3)]
    conns.append(transport.open(uuid4(), uuid4(), None, Recorder()))
    paths = {c.path for c in conns}
    assert len(paths) == 4
    assert len({c.client.uuid for c in conns}) == 4
    for c in conns:
        assert isinstance(c.client, NewAClient)
        assert c.client.name == str(c.path)
        assert c.path == transport.store_root / str(c.tenant_id) / f"{c.session_id}.sqlite3"
        assert c.path.parent.name == str(c.tenant_id)


async def test_qr_codes_reach_the_runner_with_whatsapps_lifetimes(transport: NeonizeTransport) -> None:
    """A QR from neonize (bytes) becomes on_qr with the string; the first lives 60 s, the next 20 s."""
    conn, rec = open_conn(transport)
    before = datetime.now(UTC)
    conn.handle(b"2@first,abc")
    conn.handle(b"2@second,def")
    (qr1, exp1), (qr2, exp2) = rec.named("qr")
    assert (qr1, qr2) == ("2@first,abc", "2@second,def")
    assert 55 < (exp1 - before).total_seconds() <= 61  # type: ignore[operator]
    assert 15 < (exp2 - before).total_seconds() <= 21  # type: ignore[operator]


async def test_connected_reports_phone_jid_lid_and_push_name(transport: NeonizeTransport) -> None:
    """Connected becomes on_connected with the phone JID, the LID and the push name of the device."""
    conn, rec = open_conn(transport)
    conn.client.me = nz.Device(
        JID=jid("5511900000001:7@s.whatsapp.net"), LID=jid("999888777@lid"), PushName="Loja"
    )
    await conn.handle(nz.Connected(status=True))  # type: ignore[misc]
    assert rec.named("connected") == [
        (Identity(jid="5511900000001@s.whatsapp.net", lid="999888777@lid", push_name="Loja"),)
    ]


async def test_logged_out_forgets_identity_and_refuses_sends(transport: NeonizeTransport) -> None:
    """LoggedOut deletes auth_data, reports logged_out with the reason, and sends then raise LoggedOut."""
    conn, rec = open_conn(transport)
    conn.handle(nz.LoggedOut(OnConnect=True, Reason=nz.ConnectFailureReason.MAIN_DEVICE_GONE))
    await asyncio.sleep(0.05)
    assert rec.named("auth") == [(None,)]
    (reason,) = rec.named("logged_out")[0]
    assert "main_device_gone" in str(reason)
    assert conn.auth_data() is None
    with pytest.raises(LoggedOut):
        await conn.messages.send(PEER, TextContent(text="hi"), "3EB0X", uuid4())
    assert not conn.reconnect_pending


async def test_stream_replaced_disconnects_without_reconnecting(transport: NeonizeTransport) -> None:
    """StreamReplaced is a disconnect with will_reconnect=False and no retry scheduled."""
    conn, rec = open_conn(transport)
    conn.handle(nz.StreamReplaced())
    ((reason, will_reconnect),) = rec.named("disconnected")
    assert "stream replaced" in str(reason) and will_reconnect is False
    assert not conn.reconnect_pending
    with pytest.raises(NotConnected):
        await conn.messages.send(PEER, TextContent(text="hi"), "3EB0X", uuid4())


async def test_temporary_ban_carries_reason_and_expiry(transport: NeonizeTransport) -> None:
    """TemporaryBan is a disconnect with will_reconnect=False whose reason names the ban and its expiry."""
    conn, rec = open_conn(transport)
    conn.handle(nz.TemporaryBan(Code=nz.TemporaryBan.SEND_TO_TOO_MANY_PEOPLE, Expire=3600))
    ((reason, will_reconnect),) = rec.named("disconnected")
    assert will_reconnect is False
    assert (
        "send_to_too_many_people" in str(reason) and "3600 s" in str(reason) and "expires at" in str(reason)
    )


async def test_disconnect_of_a_live_connection_says_it_will_reconnect(transport: NeonizeTransport) -> None:
    """Disconnected after Connected is reported once, with will_reconnect=True (whatsmeow reconnects)."""
    conn, rec = open_conn(transport)
    conn.client.me = nz.Device(JID=jid(PEER))
    await conn.handle(nz.Connected(status=True))  # type: ignore[misc]
    conn.handle(nz.Disconnected(status=True))
    conn.handle(nz.Disconnected(status=True))
    assert rec.named("disconnected") == [("connection to WhatsApp lost; reconnecting", True)]


async def test_text_messages_map_to_text_content_with_mentions_and_reply(transport: NeonizeTransport) -> None:
    """conversation and extendedTextMessage become TextContent with mentions and the quoted id."""
    conn, rec = open_conn(transport)
    conn.handle(message_event(wa.Message(conversation="olá")))
    ext = wa.ExtendedTextMessage(
        text="oi @5511",
        contextInfo=wa.ContextInfo(stanzaID="3EB0QUOTED", mentionedJID=["5511@s.whatsapp.net"]),
    )
    conn.handle(message_event(wa.Message(extendedTextMessage=ext)))
    (m1,), (m2,) = rec.named("message")
    assert isinstance(m1, InboundMessage) and isinstance(m2, InboundMessage)
    assert m1.content == TextContent(text="olá")
    assert m1.chat == PEER and m1.sender == PEER and m1.push_name == "Ana" and m1.whatsapp_id == "3EB0ABCDEF"
    assert m1.sent_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert m2.content == TextContent(text="oi @5511", mentions=["5511@s.whatsapp.net"], reply_to="3EB0QUOTED")


async def test_lid_addressed_message_carries_phone_jid_and_lid(transport: NeonizeTransport) -> None:
    """A message addressed by LID reports the phone-number JID as sender and chat, and the LID beside it."""
    conn, rec = open_conn(transport)
    conn.handle(message_event(wa.Message(conversation="x"), sender=PEER_LID, alt=PEER, chat=PEER_LID))
    ((m,),) = rec.named("message")
    assert isinstance(m, InboundMessage)
    assert (m.sender, m.sender_lid, m.chat) == (PEER, PEER_LID, PEER)


async def test_own_messages_and_unsupported_kinds_are_not_reported(transport: NeonizeTransport) -> None:
    """Messages from this account's other devices and kinds ZapHub does not carry emit nothing."""
    conn, rec = open_conn(transport)
    conn.handle(message_event(wa.Message(conversation="mine"), IsFromMe=True))
    conn.handle(message_event(wa.Message(protocolMessage=wa.ProtocolMessage())))
    assert rec.named("message") == []


def test_media_location_contact_and_reaction_messages_map_to_content() -> None:
    """image/video/audio/document/sticker keep caption, mimetype and size; location, contact, reaction map."""
    media = {"directPath": "/v/p", "mediaKey": b"k", "fileSHA256": b"s", "fileEncSHA256": b"e"}
    img = content_from_message(
        wa.Message(
            imageMessage=wa.ImageMessage(caption="foto", mimetype="image/jpeg", fileLength=2048, **media)
        )
    )
    assert isinstance(img, ImageContent)
    assert (img.caption, img.mimetype, img.size) == ("foto", "image/jpeg", 2048)
    assert img.whatsapp_media is not None and img.whatsapp_media.direct_path == "/v/p"
    assert img.whatsapp_media.media_key == base64.b64encode(b"k").decode()
    vid = content_from_message(
        wa.Message(videoMessage=wa.VideoMessage(mimetype="video/mp4", seconds=9, **media))
    )
    assert isinstance(vid, VideoContent) and vid.seconds == 9
    ptt = content_from_message(
        wa.Message(audioMessage=wa.AudioMessage(PTT=True, mimetype="audio/ogg", **media))
    )
    assert isinstance(ptt, AudioContent) and ptt.voice
    doc = content_from_message(
        wa.Message(documentMessage=wa.DocumentMessage(fileName="nf.pdf", mimetype="application/pdf", **media))
    )
    assert isinstance(doc, DocumentContent) and doc.filename == "nf.pdf"
    st = content_from_message(wa.Message(stickerMessage=wa.StickerMessage(mimetype="image/webp", **media)))
    assert isinstance(st, StickerContent)
    loc = content_from_message(
        wa.Message(
            locationMessage=wa.LocationMessage(degreesLatitude=-23.5, degreesLongitude=-46.6, name="SP")
        )
    )
    assert loc == LocationContent(latitude=-23.5, longitude=-46.6, name="SP")
    vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana\nTEL;waid=5511:+5511\nEND:VCARD"
    con = content_from_message(wa.Message(contactMessage=wa.ContactMessage(displayName="Ana", vcard=vcard)))
    assert con == ContactContent(display_name="Ana", vcard=vcard)
    key = MessageKey(remoteJID=PEER, fromMe=True, ID="3EB0MINE")
    rea = content_from_message(wa.Message(reactionMessage=wa.ReactionMessage(key=key, text="👍")))
    assert rea == ReactionContent(message_id="3EB0MINE", emoji="👍", from_me=True)


async def test_delivered_and_read_receipts_become_receipts(transport: NeonizeTransport) -> None:
    """Receipt events of delivered and read type give one Receipt per message id; others give none."""
    conn, rec = open_conn(transport)
    source = nz.MessageSource(Chat=jid(PEER), Sender=jid(PEER))
    for kind in (nz.Receipt.DELIVERED, nz.Receipt.READ, nz.Receipt.RETRY):
        conn.handle(
            nz.Receipt(MessageSource=source, MessageIDs=["A", "B"], Timestamp=1_700_000_100, Type=kind)
        )
    got = [r for (r,) in rec.named("receipt")]
    at = datetime.fromtimestamp(1_700_000_100, UTC)
    assert got == [
        Receipt(kind=ReceiptKind.DELIVERED, whatsapp_id="A", chat=PEER, at=at),
        Receipt(kind=ReceiptKind.DELIVERED, whatsapp_id="B", chat=PEER, at=at),
        Receipt(kind=ReceiptKind.READ, whatsapp_id="A", chat=PEER, at=at),
        Receipt(kind=ReceiptKind.READ, whatsapp_id="B", chat=PEER, at=at),
    ]


def test_text_send_request_is_plain_or_extended_with_reply_and_mentions() -> None:
    """Plain text is a conversation; with mentions or a reply, an extendedTextMessage with contextInfo."""
    assert build_message(TextContent(text="oi"), PEER) == wa.Message(conversation="oi")
    quoted = Quoted(sender=PEER, message=wa.Message(conversation="original"))
    msg = build_message(TextContent(text="r", reply_to="3EB0Q", mentions=["+5511999"]), PEER, quoted=quoted)
    ctx = msg.extendedTextMessage.contextInfo
    assert msg.extendedTextMessage.text == "r"
    assert (ctx.stanzaID, ctx.participant, list(ctx.mentionedJID)) == (
        "3EB0Q",
        PEER,
        ["5511999@s.whatsapp.net"],
    )
    assert ctx.quotedMessage.conversation == "original"


def test_media_send_requests_carry_upload_and_metadata() -> None:
    """Image, video, audio, voice note, document and sticker messages carry the upload and their metadata."""
    up = upload()
    media = Media(upload=up, mimetype="image/jpeg", thumbnail=b"jpg")
    img = build_message(ImageContent(url="https://x/a.jpg", caption="c", mentions=["5511"]), PEER, media)
    im = img.imageMessage
    assert (im.URL, im.directPath, im.mediaKey, im.fileLength) == (up.url, up.DirectPath, up.MediaKey, 1234)
    assert (im.caption, im.mimetype, im.JPEGThumbnail) == ("c", "image/jpeg", b"jpg")
    assert list(im.contextInfo.mentionedJID) == ["5511@s.whatsapp.net"]
    vid = build_message(VideoContent(data_base64="AA==", gif=True), PEER, Media(up, "video/mp4", seconds=12))
    assert vid.videoMessage.gifPlayback and vid.videoMessage.seconds == 12
    voice = build_message(
        AudioContent(data_base64="AA==", voice=True), PEER, Media(up, "audio/ogg; codecs=opus", seconds=4)
    )
    assert voice.audioMessage.PTT and voice.audioMessage.seconds == 4
    assert voice.audioMessage.mimetype == "audio/ogg; codecs=opus"
    doc = build_message(
        DocumentContent(url="https://x/n.pdf", filename="nota.pdf", caption="NF", reply_to="3EB0Q"),
        PEER,
        Media(up, "application/pdf"),
    )
    dm = doc.documentMessage
    assert (dm.fileName, dm.caption, dm.mimetype, dm.contextInfo.stanzaID) == (
        "nota.pdf",
        "NF",
        "application/pdf",
        "3EB0Q",
    )
    st = build_message(StickerContent(data_base64="AA=="), PEER, Media(up, "image/webp"))
    assert st.stickerMessage.mimetype == "image/webp" and st.stickerMessage.width == 512
    with pytest.raises(InvalidContent):
        build_message(ImageContent(url="https://x/a.jpg"), PEER)


def test_location_contact_and_reaction_send_requests() -> None:
    """Location, contact (vCard) and reaction contents build their WhatsApp messages."""
    loc = build_message(LocationContent(latitude=1.5, longitude=2.5, name="Loja", address="Rua"), PEER)
    lm = loc.locationMessage
    assert (lm.degreesLatitude, lm.degreesLongitude, lm.name, lm.address) == (1.5, 2.5, "Loja", "Rua")
    con = build_message(ContactContent(display_name="Ana", vcard="BEGIN:VCARD\nEND:VCARD"), PEER)
    assert con.contactMessage.displayName == "Ana" and con.contactMessage.vcard.startswith("BEGIN:VCARD")
    rea = build_message(ReactionContent(message_id="3EB0T", emoji="❤️"), PEER)
    key = rea.reactionMessage.key
    assert (key.remoteJID, key.fromMe, key.ID, rea.reactionMessage.text) == (PEER, False, "3EB0T", "❤️")
    assert rea.reactionMessage.senderTimestampMS > 0


def test_media_content_needs_exactly_one_source() -> None:
    """A media content needs url or data_base64 (http/https only), not both; text stays as it was."""
    with pytest.raises(ValidationError):
        CONTENT.validate_python({"type": "image"})
    with pytest.raises(ValidationError):
        CONTENT.validate_python({"type": "image", "url": "ftp://x/y"})
    with pytest.raises(ValidationError):
        CONTENT.validate_python({"type": "image", "url": "https://x/y", "data_base64": "AA=="})
    assert isinstance(
        CONTENT.validate_python({"type": "audio", "url": "https://x/a", "voice": True}), AudioContent
    )
    assert CONTENT.validate_python({"type": "text", "text": "x"}) == TextContent(text="x")


def test_whatsmeow_errors_map_to_named_errors() -> None:
    """whatsmeow's failure texts map to NotConnected, LoggedOut, RecipientNotOnWhatsApp or transient."""
    assert isinstance(map_send_error("websocket not connected"), NotConnected)
    assert isinstance(map_send_error("the store doesn't contain a device JID"), LoggedOut)
    assert isinstance(map_send_error("server returned error: item-not-found"), RecipientNotOnWhatsApp)
    assert isinstance(map_send_error("info query timed out"), TransientSendError)


async def test_send_while_not_connected_is_refused(transport: NeonizeTransport) -> None:
    """A send before the connection is live raises NotConnected without touching the Go client."""
    conn, _ = open_conn(transport)
    with pytest.raises(NotConnected):
        await conn.messages.send(PEER, TextContent(text="hi"), "3EB0X", uuid4())


def _store(path: Path, rows: int) -> None:
    db = sqlite3.connect(path)
    db.execute("create table if not exists whatsmeow_device (jid text primary key, push_name text)")
    db.executemany(
        "insert into whatsmeow_device values (?, ?)", [(f"{i}@s.whatsapp.net", "x") for i in range(rows)]
    )
    db.commit()
    db.close()


async def test_auth_data_round_trips_through_the_sqlite_store(
    tmp_path: Path, transport: NeonizeTransport
) -> None:
    """auth_data seeds the store file on connect, and a snapshot of the live file reads back the same rows."""
    src = tmp_path / "src.sqlite3"
    _store(src, 3)
    auth = snapshot_sqlite(src)
    assert auth is not None and auth.startswith(b"SQLite format 3")
    conn, _ = open_conn(transport, auth)
    assert conn.auth_data() == auth
    await asyncio.to_thread(seed_sqlite, conn.path, auth)
    db = sqlite3.connect(conn.path)  # a live writer, as whatsmeow is
    db.execute("insert into whatsmeow_device values ('9@s.whatsapp.net', 'y')")
    db.commit()
    again = await asyncio.to_thread(snapshot_sqlite, conn.path)
    db.close()
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(again or b"")
    assert sqlite3.connect(copy).execute("select count(*) from whatsmeow_device").fetchone() == (4,)
    seed_sqlite(conn.path, None)
    assert not conn.path.exists()


async def test_foreign_auth_data_is_ignored(transport: NeonizeTransport) -> None:
    """auth_data that is not a SQLite store (e.g. the simulator's JSON) is dropped: pairing starts afresh."""
    conn, _ = open_conn(transport, b'{"transport": "sim"}')
    assert conn.auth_data() is None


async def test_missing_ffmpeg_is_a_warning_at_start_and_a_named_error_on_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ffmpeg/ffprobe the transport starts with a warning; a voice note raises MediaToolsMissing."""
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert missing_media_tools() == ["ffmpeg", "ffprobe"]
    transport = NeonizeTransport(tmp_path, max_sessions=4)
    with caplog.at_level(logging.WARNING):
        await transport.start()
    assert any("ffmpeg and ffprobe not found" in r.getMessage() for r in caplog.records)
    await transport.close()
    with pytest.raises(MediaToolsMissing):
        await to_voice_note(MediaBytes(b"ID3", "audio/mpeg"))
    with pytest.raises(MediaToolsMissing):
        await to_sticker(MediaBytes(b"\x89PNG", "image/png"))
    webp = MediaBytes(b"RIFF....WEBP", "image/webp")
    assert await to_sticker(webp) is webp


async def test_offline_connect_fails_retries_and_stops_on_close(tmp_path: Path) -> None:
    """Offline, connect reports a reconnecting disconnect and schedules a retry; close cancels it for good."""
    transport = NeonizeTransport(tmp_path, max_sessions=4)
    await transport.start()
    rec = Recorder()
    conn = transport.open(uuid4(), UUID(int=1), None, rec)
    await conn.connect()
    for _ in range(100):  # the Go side fails DNS at once in a sandbox; allow a slow resolver some time
        if conn.reconnect_pending:
            break
        await asyncio.sleep(0.05)
    assert conn.reconnect_pending
    ((reason, will_reconnect),) = rec.named("disconnected")
    assert "connect failed" in str(reason) and will_reconnect is True
    await conn.close()
    assert not conn.reconnect_pending
    calls = len(rec.calls)
    await asyncio.sleep(1.5)  # past the first retry delay: nothing may happen after close
    assert len(rec.calls) == calls
    assert conn.path.exists()
    await transport.close()


MANY_STARTS = """
import asyncio, sys
from pathlib import Path
from uuid import uuid4
from zaphub_session_host.transport.neonize import NeonizeTransport


class Quiet:
    def __getattr__(self, name):
        return lambda *args: None


async def main(root: Path) -> None:
    transport = NeonizeTransport(root, max_sessions=80)
    await transport.start()
    conns = [transport.open(uuid4(), uuid4(), None, Quiet()) for _ in range(80)]
    await asyncio.gather(*(c.connect() for c in conns))
    await asyncio.sleep(2)  # every Go client started and failed to dial at least once
    await asyncio.gather(*(c.close() for c in conns))
    await transport.close()
    print("survived", flush=True)


asyncio.run(main(Path(sys.argv[1])))
"""


def test_many_clients_starting_at_once_do_not_crash_the_process(tmp_path: Path) -> None:
    """neonize's Go client table has no lock: starts that overlap kill the process (concurrent map
    writes). A host taking over many sessions starts them together; the process must survive it."""
    import os
    import subprocess
    import sys

    # whatsmeow dials through the proxy of the environment: a closed local port keeps the 80 clients
    # from reaching WhatsApp on a machine that could.
    offline = os.environ | {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", MANY_STARTS, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env=offline,
        )
        # What the gate prevents is two writes at once. A read racing a write that a Go client makes
        # by itself (gate.py: only a lock in neonize closes that) killed one run in a full suite; it
        # is given one more try, so that this test keeps failing on what the gate is for.
        if "concurrent map read and map write" not in done.stderr:
            break
    assert "concurrent map" not in done.stderr
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "survived"


async def test_the_gate_finds_a_started_client_in_neonizes_table_and_not_after_its_stop(
    tmp_path: Path,
) -> None:
    """The probe the gate waits on: absent before the start, present after it (offline the Go call
    fails at the dial, after the client is registered), absent after the stop; stopping twice is safe."""
    client = NewAClient(str(tmp_path / "gate.sqlite3"), uuid=f"gate-{uuid4()}")
    assert not await gate._in_table(client)
    task = await gate.start(client)
    assert await gate._in_table(client)
    await gate.stop(client)
    assert not await gate._in_table(client)
    await gate.stop(client)
    await asyncio.wait({task}, timeout=10)
    assert task.done()  # Neonize() has returned: offline its dial failed (an error), or the stop ended it
    task.exception()
