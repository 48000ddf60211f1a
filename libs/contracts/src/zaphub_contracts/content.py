"""Message content carried by send commands and inbound events, one model per WhatsApp message type."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT_LENGTH = 65536  # WhatsApp's own limit for a text body


class ContentBase(BaseModel):
    # Consumers ignore fields they do not know: v1 grows by adding optional fields.
    model_config = ConfigDict(extra="ignore", frozen=True)


class TextContent(ContentBase):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=MAX_TEXT_LENGTH)
    mentions: list[str] = Field(default_factory=list, description="JIDs or E.164 numbers mentioned")
    reply_to: str | None = Field(default=None, description="WhatsApp id of the quoted message")


MessageContent = Annotated[TextContent, Field(discriminator="type")]
