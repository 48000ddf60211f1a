"""Building the WhatsApp protobuf `Message` that a send hands to whatsmeow, one shape per content type.

Pure: the uploaded media (whatsmeow's `UploadResponse`) and the quoted message come in as values, so
the exact message that would be sent can be checked without a connection.
"""

import time
from dataclasses import dataclass

from neonize.proto.Neonize_pb2 import UploadResponse
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import (
    AudioMessage,
    ContactMessage,
    ContextInfo,
    DocumentMessage,
    ExtendedTextMessage,
    ImageMessage,
    LocationMessage,
    ReactionMessage,
    StickerMessage,
    VideoMessage,
)
from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage
from neonize.utils.enum import MediaType

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
from zaphub_session_host.transport.base import InvalidContent
from zaphub_session_host.transport.neonize.events import USER_SERVER

UPLOAD_TYPES = {
    "image": MediaType.MediaImage,
    "sticker": MediaType.MediaImage,  # whatsmeow uploads stickers as images
    "video": MediaType.MediaVideo,
    "audio": MediaType.MediaAudio,
    "document": MediaType.MediaDocument,
}


@dataclass(frozen=True, slots=True)
class Quoted:
    """A message seen recently in this session, kept so a reply can show what it quotes."""

    sender: str
    message: WAMessage


@dataclass(frozen=True, slots=True)
class Media:
    """What an upload gave back, plus what was measured locally."""

    upload: UploadResponse
    mimetype: str
    seconds: int = 0
    thumbnail: bytes | None = None


def mention_jid(value: str) -> str:
    """A mention as WhatsApp wants it: a JID; E.164 numbers become user JIDs."""
    value = value.strip()
    return value if "@" in value else f"{value.lstrip('+')}@{USER_SERVER}"


def context_info(
    chat: str, reply_to: str | None, mentions: list[str], quoted: Quoted | None
) -> ContextInfo | None:
    """Reply and mentions; None when the message has neither."""
    if reply_to is None and not mentions:
        return None
    ctx = ContextInfo(mentionedJID=[mention_jid(m) for m in mentions])
    if reply_to is not None:
        ctx.stanzaID = reply_to
        # Without the quoted message WhatsApp still threads the reply; with it, it shows the preview.
        ctx.participant = quoted.sender if quoted is not None else chat
        if quoted is not None:
            ctx.quotedMessage.CopyFrom(quoted.message)
    return ctx


def _media_fields(media: Media) -> dict[str, object]:
    up = media.upload
    return {
        "URL": up.url,
        "directPath": up.DirectPath,
        "mediaKey": up.MediaKey,
        "fileEncSHA256": up.FileEncSHA256,
        "fileSHA256": up.FileSHA256,
        "fileLength": up.FileLength,
        "mimetype": media.mimetype,
        "mediaKeyTimestamp": int(time.time()),
    }


def _need(media: Media | None, kind: str) -> Media:
    if media is None:
        raise InvalidContent(f"{kind} needs its media uploaded first")
    return media


def build_message(
    content: MessageContent, chat: str, media: Media | None = None, quoted: Quoted | None = None
) -> WAMessage:
    """The protobuf message for `content` sent to `chat`."""
    match content:
        case TextContent():
            ctx = context_info(chat, content.reply_to, content.mentions, quoted)
            if ctx is None:
                return WAMessage(conversation=content.text)
            return WAMessage(extendedTextMessage=ExtendedTextMessage(text=content.text, contextInfo=ctx))
        case ImageContent():
            m = _need(media, "an image")
            ctx = context_info(chat, content.reply_to, content.mentions, quoted)
            img = ImageMessage(caption=content.caption or None, contextInfo=ctx, **_media_fields(m))
            if m.thumbnail:
                img.JPEGThumbnail = m.thumbnail
            return WAMessage(imageMessage=img)
        case VideoContent():
            m = _need(media, "a video")
            ctx = context_info(chat, content.reply_to, content.mentions, quoted)
            vid = VideoMessage(
                caption=content.caption or None,
                gifPlayback=content.gif,
                seconds=content.seconds or m.seconds or None,
                contextInfo=ctx,
                **_media_fields(m),
            )
            if m.thumbnail:
                vid.JPEGThumbnail = m.thumbnail
            return WAMessage(videoMessage=vid)
        case AudioContent():
            m = _need(media, "an audio")
            ctx = context_info(chat, content.reply_to, [], quoted)
            return WAMessage(
                audioMessage=AudioMessage(
                    PTT=content.voice,
                    seconds=content.seconds or m.seconds or None,
                    contextInfo=ctx,
                    **_media_fields(m),
                )
            )
        case DocumentContent():
            m = _need(media, "a document")
            ctx = context_info(chat, content.reply_to, content.mentions, quoted)
            name = content.filename or "file"
            return WAMessage(
                documentMessage=DocumentMessage(
                    fileName=name,
                    title=name,
                    caption=content.caption or None,
                    contextInfo=ctx,
                    **_media_fields(m),
                )
            )
        case StickerContent():
            m = _need(media, "a sticker")
            ctx = context_info(chat, content.reply_to, [], quoted)
            return WAMessage(
                stickerMessage=StickerMessage(
                    isAnimated=content.animated, height=512, width=512, contextInfo=ctx, **_media_fields(m)
                )
            )
        case LocationContent():
            ctx = context_info(chat, content.reply_to, [], quoted)
            return WAMessage(
                locationMessage=LocationMessage(
                    degreesLatitude=content.latitude,
                    degreesLongitude=content.longitude,
                    name=content.name,
                    address=content.address,
                    contextInfo=ctx,
                )
            )
        case ContactContent():
            ctx = context_info(chat, content.reply_to, [], quoted)
            return WAMessage(
                contactMessage=ContactMessage(
                    displayName=content.display_name, vcard=content.vcard, contextInfo=ctx
                )
            )
        case ReactionContent():
            key = MessageKey(
                remoteJID=chat, fromMe=content.from_me, ID=content.message_id, participant=content.participant
            )
            return WAMessage(
                reactionMessage=ReactionMessage(
                    key=key, text=content.emoji, senderTimestampMS=int(time.time() * 1000)
                )
            )
    raise InvalidContent(f"content type {content.type!r} cannot be sent")  # pragma: no cover
