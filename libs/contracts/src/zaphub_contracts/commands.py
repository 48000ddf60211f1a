"""Commands published to the `ZAPHUB_CMD` stream."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.content import MessageContent


class CommandBase(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    issued_at: datetime


class SendMessage(CommandBase):
    """Hand one message to WhatsApp through the session that owns `session_id`."""

    message_id: UUID = Field(description="ZapHub message id; also the JetStream Nats-Msg-Id")
    seq: int = Field(ge=1, description="Order of acceptance within the session, from 1")
    to: str = Field(min_length=3, max_length=128, description="Recipient JID (user@s.whatsapp.net or group)")
    content: MessageContent


class SessionAction(StrEnum):
    START = "start"
    STOP = "stop"
    DELETE = "delete"
    RESTART = "restart"
    LOGOUT = "logout"
    PAIR_CODE = "pair_code"


class SessionCommand(CommandBase):
    """Change what a session should be doing; the dispatcher routes it to the owning host."""

    action: SessionAction
    name: str | None = None
    phone: str | None = Field(default=None, description="E.164 digits, for pair_code")
