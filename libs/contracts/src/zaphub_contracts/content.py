"""Message content carried by send commands and inbound events, one model per WhatsApp message type."""

from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_TEXT_LENGTH = 65536  # WhatsApp's own limit for a text body
MAX_CAPTION_LENGTH = 1024  # WhatsApp cuts media captions longer than this
MAX_MEDIA_BASE64 = 22_369_624  # 16 MiB of media, base64-encoded; larger files go by `url`
MEDIA_URL_PATTERN = r"^https?://[^\s]+$"
MAX_PREVIEW_TITLE = 1024
MAX_PREVIEW_DESCRIPTION = 4096
MAX_PREVIEW_THUMBNAIL_BASE64 = 200_000  # an inline JPEG; WhatsApp's are a few kB


class ContentBase(BaseModel):
    # Consumers ignore fields they do not know: v1 grows by adding optional fields.
    model_config = ConfigDict(extra="ignore", frozen=True)


class LinkPreview(ContentBase):
    """What a text shows of the page its first URL points to (WhatsApp's link preview)."""

    url: str = Field(min_length=1, max_length=4096, description="The URL as it appears in the text")
    title: str | None = Field(default=None, max_length=MAX_PREVIEW_TITLE)
    description: str | None = Field(default=None, max_length=MAX_PREVIEW_DESCRIPTION)
    thumbnail_base64: str | None = Field(
        default=None, max_length=MAX_PREVIEW_THUMBNAIL_BASE64, description="A small JPEG, base64"
    )


class TextContent(ContentBase):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    mentions: list[str] = Field(default_factory=list, description="JIDs or E.164 numbers mentioned")
    mention_all: bool = Field(default=False, description="In a group: mention every participant")
    reply_to: str | None = Field(default=None, description="WhatsApp id of the quoted message")
    reply_to_participant: str | None = Field(
        default=None,
        max_length=80,
        description="In a group: JID of who sent the quoted message, shown with the quote",
    )
    link_preview: bool = Field(
        default=False,
        description="Sending: the session-host fetches the first URL's title, description and thumbnail"
        " (through the egress policy) and sends them as the preview; without one if that fails",
    )
    preview: LinkPreview | None = Field(
        default=None, description="The link preview it went with or arrived with, when it has one"
    )


class WhatsAppMedia(ContentBase):
    """Where WhatsApp keeps a received media file (encrypted); enough to download it later."""

    direct_path: str
    media_key: str = Field(description="base64")
    file_sha256: str = Field(description="base64")
    file_enc_sha256: str = Field(description="base64")


class MediaContent(ContentBase):
    """Fields every media message shares: the bytes by `url` or `data_base64` (sending), or the
    `whatsapp_media` reference (receiving)."""

    url: str | None = Field(
        default=None, pattern=MEDIA_URL_PATTERN, max_length=4096, description="http(s) URL to fetch"
    )
    data_base64: str | None = Field(default=None, max_length=MAX_MEDIA_BASE64)
    mimetype: str | None = Field(default=None, max_length=255, description="e.g. image/jpeg")
    size: int | None = Field(default=None, ge=0, description="Bytes, as WhatsApp reports them (received)")
    whatsapp_media: WhatsAppMedia | None = Field(default=None, description="Set on received media")
    reply_to: str | None = Field(default=None, description="WhatsApp id of the quoted message")
    reply_to_participant: str | None = Field(
        default=None,
        max_length=80,
        description="In a group: JID of who sent the quoted message, shown with the quote",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if self.url is not None and self.data_base64 is not None:
            raise ValueError("give either url or data_base64, not both")
        if self.url is None and self.data_base64 is None and self.whatsapp_media is None:
            raise ValueError("media needs url or data_base64")
        return self


class ImageContent(MediaContent):
    type: Literal["image"] = "image"
    caption: str | None = Field(default=None, max_length=MAX_CAPTION_LENGTH)
    mentions: list[str] = Field(default_factory=list, description="JIDs or E.164 numbers mentioned")


class VideoContent(MediaContent):
    type: Literal["video"] = "video"
    caption: str | None = Field(default=None, max_length=MAX_CAPTION_LENGTH)
    mentions: list[str] = Field(default_factory=list, description="JIDs or E.164 numbers mentioned")
    gif: bool = Field(default=False, description="Play as a looping GIF")
    seconds: int | None = Field(default=None, ge=0)


class AudioContent(MediaContent):
    type: Literal["audio"] = "audio"
    voice: bool = Field(default=False, description="Send as a voice note (push-to-talk, ogg/opus)")
    seconds: int | None = Field(default=None, ge=0)


class DocumentContent(MediaContent):
    type: Literal["document"] = "document"
    filename: str | None = Field(default=None, max_length=255)
    caption: str | None = Field(default=None, max_length=MAX_CAPTION_LENGTH)
    mentions: list[str] = Field(default_factory=list, description="JIDs or E.164 numbers mentioned")


class StickerContent(MediaContent):
    type: Literal["sticker"] = "sticker"
    animated: bool = False


class LocationContent(ContentBase):
    type: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=1024)
    address: str | None = Field(default=None, max_length=1024)
    reply_to: str | None = Field(default=None, description="WhatsApp id of the quoted message")
    reply_to_participant: str | None = Field(
        default=None,
        max_length=80,
        description="In a group: JID of who sent the quoted message, shown with the quote",
    )


class ContactContent(ContentBase):
    type: Literal["contact"] = "contact"
    display_name: str = Field(min_length=1, max_length=1024)
    vcard: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH, description="vCard 3.0 text")
    reply_to: str | None = Field(default=None, description="WhatsApp id of the quoted message")
    reply_to_participant: str | None = Field(
        default=None,
        max_length=80,
        description="In a group: JID of who sent the quoted message, shown with the quote",
    )


class ReactionContent(ContentBase):
    type: Literal["reaction"] = "reaction"
    message_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the message reacted to")
    emoji: str = Field(max_length=32, description="One emoji; empty removes an earlier reaction")
    from_me: bool = Field(default=False, description="The message reacted to was sent by this session")
    participant: str | None = Field(
        default=None, description="In groups: JID of who sent the message reacted to"
    )


class PollContent(ContentBase):
    """A poll: a question and 2 to 12 options, of which a voter may select `selectable_count`."""

    type: Literal["poll"] = "poll"
    name: str = Field(min_length=1, max_length=255, description="The question")
    options: list[str] = Field(min_length=2, max_length=12)
    selectable_count: int = Field(default=1, ge=1, le=12, description="How many options a voter may select")

    @model_validator(mode="after")
    def _options(self) -> Self:
        if len(set(self.options)) != len(self.options) or not all(o.strip() for o in self.options):
            raise ValueError("options must be distinct and not empty")
        if self.selectable_count > len(self.options):
            raise ValueError("selectable_count cannot exceed the number of options")
        return self


class PollVoteContent(ContentBase):
    """A vote on a poll: the options the voter selects now (none withdraws the vote)."""

    type: Literal["poll_vote"] = "poll_vote"
    poll_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the poll")
    options: list[str] = Field(default_factory=list, max_length=12)


EDIT_WINDOW_SECONDS = 15 * 60  # WhatsApp refuses edits of messages older than this


class EditContent(ContentBase):
    """Edit a message this session sent: its text, or its caption. Sent as a command in the session's
    order, under its own ZapHub id and seq, so it never overtakes the message it edits."""

    type: Literal["edit"] = "edit"
    message_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the message edited")
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_LENGTH)
    caption: str | None = Field(default=None, max_length=MAX_CAPTION_LENGTH)
    sent_at: datetime | None = Field(
        default=None, description="When the edited message was handed over, for the edit window"
    )

    @model_validator(mode="after")
    def _one_change(self) -> Self:
        if (self.text is None) == (self.caption is None):
            raise ValueError("give exactly one of text or caption")
        return self


class RevokeContent(ContentBase):
    """Delete a message for everyone. Sent by this session (`from_me`), or received from a contact."""

    type: Literal["revoke"] = "revoke"
    message_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the message revoked")
    from_me: bool = Field(default=True, description="The revoked message was sent by this session")
    participant: str | None = Field(default=None, description="In groups: JID of who sent the message")


MessageContent = Annotated[
    TextContent
    | ImageContent
    | VideoContent
    | AudioContent
    | DocumentContent
    | StickerContent
    | LocationContent
    | ContactContent
    | ReactionContent
    | PollContent
    | PollVoteContent
    | EditContent
    | RevokeContent,
    Field(discriminator="type"),
]
