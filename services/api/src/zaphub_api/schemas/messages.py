"""REST models of messages: what a client sends, and a message with its status history."""

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, RootModel, TypeAdapter, field_validator, model_validator

from zaphub_api.schemas.phones import normalise_recipient
from zaphub_contracts import content as c
from zaphub_contracts.statuses import MessageStatus

CONTENT: TypeAdapter[c.MessageContent] = TypeAdapter(c.MessageContent)
_REPLY_TO: Any = Field(default=None, max_length=128, description="WhatsApp id of a quoted message")
_MENTIONS: Any = Field(default_factory=list, max_length=256, description="JIDs or E.164 numbers mentioned")


class MessageCreateBase(BaseModel):
    """What every message type shares. A type's fields are those of its contract content model, so
    `content()` is the same for all: the fields other than `to`, validated by the contract."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="E.164 number or JID", examples=["+5511999998888"])

    @field_validator("to")
    @classmethod
    def _recipient(cls, value: str) -> str:
        return normalise_recipient(value)

    def content(self) -> c.ContentBase:
        return CONTENT.validate_python(self.model_dump(exclude={"to"}, exclude_none=True))


class TextMessageCreate(MessageCreateBase):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=c.MAX_TEXT_LENGTH)
    mentions: list[str] = _MENTIONS
    mention_all: bool = Field(default=False, description="Sending to a group: mention every participant")
    reply_to: str | None = _REPLY_TO


class MediaMessageCreate(MessageCreateBase):
    """Media by `url` (fetched by the session-host) or inline as `data_base64`; exactly one of them.
    Multipart uploads go to `POST /sessions/{id}/messages/upload`."""

    url: str | None = Field(
        default=None, pattern=c.MEDIA_URL_PATTERN, max_length=4096, description="http(s) URL of the file"
    )
    data_base64: str | None = Field(
        default=None, max_length=c.MAX_MEDIA_BASE64, description="The file, base64"
    )
    mimetype: str | None = Field(
        default=None, max_length=255, description="e.g. image/jpeg; checked per type"
    )
    reply_to: str | None = _REPLY_TO

    @model_validator(mode="after")
    def _one_source(self) -> "MediaMessageCreate":
        if (self.url is None) == (self.data_base64 is None):
            raise ValueError("give exactly one of url or data_base64")
        return self


class ImageMessageCreate(MediaMessageCreate):
    type: Literal["image"]
    caption: str | None = Field(default=None, max_length=c.MAX_CAPTION_LENGTH)
    mentions: list[str] = _MENTIONS


class VideoMessageCreate(MediaMessageCreate):
    type: Literal["video"]
    caption: str | None = Field(default=None, max_length=c.MAX_CAPTION_LENGTH)
    mentions: list[str] = _MENTIONS
    gif: bool = Field(default=False, description="Play as a looping GIF")


class AudioMessageCreate(MediaMessageCreate):
    type: Literal["audio"]
    voice: bool = Field(default=False, description="Send as a voice note (ogg/opus)")


class DocumentMessageCreate(MediaMessageCreate):
    type: Literal["document"]
    filename: str | None = Field(default=None, max_length=255)
    caption: str | None = Field(default=None, max_length=c.MAX_CAPTION_LENGTH)
    mentions: list[str] = _MENTIONS


class StickerMessageCreate(MediaMessageCreate):
    type: Literal["sticker"]
    animated: bool = False


class LocationMessageCreate(MessageCreateBase):
    type: Literal["location"]
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, max_length=1024)
    address: str | None = Field(default=None, max_length=1024)
    reply_to: str | None = _REPLY_TO


class ContactMessageCreate(MessageCreateBase):
    type: Literal["contact"]
    display_name: str = Field(min_length=1, max_length=1024)
    vcard: str = Field(min_length=1, max_length=c.MAX_TEXT_LENGTH, description="vCard 3.0 text")
    reply_to: str | None = _REPLY_TO


class ReactionMessageCreate(MessageCreateBase):
    type: Literal["reaction"]
    message_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the message reacted to")
    emoji: str = Field(max_length=32, description="One emoji; empty removes an earlier reaction")
    from_me: bool = Field(default=False, description="The message reacted to was sent by this session")
    participant: str | None = Field(default=None, max_length=128, description="In groups: its sender's JID")


class PollMessageCreate(MessageCreateBase):
    type: Literal["poll"]
    name: str = Field(min_length=1, max_length=255, description="The question")
    options: list[str] = Field(min_length=2, max_length=12, description="2 to 12 distinct options")
    selectable_count: int = Field(default=1, ge=1, le=12, description="Options a voter may select")


class PollVoteMessageCreate(MessageCreateBase):
    """A vote on a poll this session received; `options` empty withdraws the vote."""

    type: Literal["poll_vote"]
    poll_id: str = Field(min_length=1, max_length=128, description="WhatsApp id of the poll")
    options: list[str] = Field(default_factory=list, max_length=12)


# One member per type of the contracts' `MessageContent` a client sends; edits and revokes have their
# own routes (PATCH and DELETE /messages/{id}). A new type is one model here and one member.
MessageCreate = Annotated[
    TextMessageCreate
    | ImageMessageCreate
    | VideoMessageCreate
    | AudioMessageCreate
    | DocumentMessageCreate
    | StickerMessageCreate
    | LocationMessageCreate
    | ContactMessageCreate
    | ReactionMessageCreate
    | PollMessageCreate
    | PollVoteMessageCreate,
    Field(discriminator="type"),
]


MESSAGE_MODELS: dict[str, type[MessageCreateBase]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in MessageCreateBase.__subclasses__() + MediaMessageCreate.__subclasses__()
    if "type" in model.model_fields
}


class MessageCreateBody(RootModel[MessageCreate]):
    """The request body of a send: one of the message types, chosen by `type`."""


class MessageAccepted(BaseModel):
    id: UUID
    status: MessageStatus
    session_id: UUID
    created_at: datetime


class StatusChange(BaseModel):
    status: MessageStatus
    at: datetime
    detail: dict[str, Any] = Field(default_factory=dict)


class MessageRead(BaseModel):
    id: UUID
    session_id: UUID
    direction: Literal["outbound", "inbound"]
    status: MessageStatus
    chat: str
    sender: str | None = None
    sender_lid: str | None = Field(default=None, description="The sender's LID, when WhatsApp gave one")
    push_name: str | None = None
    participant: str | None = Field(default=None, description="In a group: the JID of who sent it")
    participant_lid: str | None = None
    imported: bool = Field(default=False, description="From WhatsApp's history sync after pairing")
    type: str
    content: dict[str, Any]
    whatsapp_id: str | None = None
    failure_reason: str | None = None
    failure_detail: str | None = None
    created_at: datetime
    updated_at: datetime
    edited_at: datetime | None = Field(default=None, description="When the message was last edited")
    tallies: dict[str, int] | None = Field(default=None, description="A poll's votes per option")
    revoked_at: datetime | None = Field(default=None, description="When the message was deleted for everyone")
    history: list[StatusChange]


class MessageEdit(BaseModel):
    """A new text (text messages) or caption (image, video, document); exactly one, checked once the
    message is found (another tenant's message is 404 whatever the body)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"text": "Your order ships today (updated)"}]}
    )

    text: str | None = Field(default=None, min_length=1, max_length=c.MAX_TEXT_LENGTH)
    caption: str | None = Field(default=None, max_length=c.MAX_CAPTION_LENGTH)
