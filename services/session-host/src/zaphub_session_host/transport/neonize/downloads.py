"""Received media from WhatsApp: the message neonize's `download_any` needs, rebuilt from the
`whatsapp_media` reference a received message carries; whatsmeow fetches it from the CDN, checks its
hashes and decrypts it."""

import base64

from neonize.proto.waE2E.WAWebProtobufsE2E_pb2 import Message as WAMessage

from zaphub_contracts.content import MediaContent, MessageContent

DOWNLOAD_TIMEOUT = 120.0  # seconds for one download (the CDN, the hash checks and the decryption)

_FIELDS = {  # content type -> the field of `Message` that holds that kind of media
    "image": "imageMessage",
    "video": "videoMessage",
    "audio": "audioMessage",
    "document": "documentMessage",
    "sticker": "stickerMessage",
}


def download_request(content: MessageContent) -> WAMessage | None:
    """The media message to hand `download_any`, or None when the content has no WhatsApp media."""
    if not isinstance(content, MediaContent) or content.whatsapp_media is None:
        return None
    field = _FIELDS.get(content.type)
    if field is None:
        return None
    ref = content.whatsapp_media
    message = WAMessage()
    media = getattr(message, field)
    media.directPath = ref.direct_path
    media.mediaKey = base64.b64decode(ref.media_key)
    media.fileSHA256 = base64.b64decode(ref.file_sha256)
    media.fileEncSHA256 = base64.b64decode(ref.file_enc_sha256)
    media.fileLength = content.size or 0
    media.mimetype = content.mimetype or ""
    return message
