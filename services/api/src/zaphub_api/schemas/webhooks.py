"""REST models of webhooks and of their delivery log."""

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from zaphub_contracts.events import EVENT_BY_SHORT
from zaphub_contracts.webhooks import ALL_EVENTS

MAX_URL_LENGTH = 2048


def _url(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("must name a host")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; check the ZapHub-Signature header instead")
    if port == 0:
        raise ValueError("must not use port 0")
    return value


def _events(value: list[str]) -> list[str]:
    unknown = [name for name in value if name != ALL_EVENTS and name not in EVENT_BY_SHORT]
    if unknown:
        known = ", ".join(sorted(EVENT_BY_SHORT))
        raise ValueError(f"unknown event type(s) {', '.join(unknown)}; use '*' or any of: {known}")
    return [ALL_EVENTS] if ALL_EVENTS in value else sorted(set(value))


WebhookUrl = Annotated[str, AfterValidator(_url), Field(examples=["https://example.com/zaphub"])]
EventNames = Annotated[
    list[str],
    Field(min_length=1, max_length=64, examples=[["message.received", "message.sent"], ["*"]]),
    AfterValidator(_events),
]
Secret = Annotated[str, Field(min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$")]
Description = Annotated[str, Field(max_length=500)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    events: EventNames
    secret: Secret | None = Field(default=None, description="Signing secret; generated when omitted")
    description: Description | None = None
    active: bool = True


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl | None = None
    events: EventNames | None = None
    secret: Secret | None = Field(default=None, description="A new signing secret (never shown again)")
    description: Description | None = None
    active: bool | None = None


class WebhookRead(BaseModel):
    id: UUID
    url: str
    events: list[str]
    description: str | None = None
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="Signing secret of the ZapHub-Signature header; shown only now")


class AttemptRead(BaseModel):
    attempt: int
    status: str
    response_code: int | None = None
    error: str | None = None
    duration_ms: int
    at: datetime


class DeliveryRead(BaseModel):
    id: UUID
    webhook_id: UUID
    event_id: UUID
    event_type: str
    session_id: UUID
    status: str = Field(description="pending, retrying, succeeded or failed")
    attempts: int
    last_response_code: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    next_attempt_at: datetime | None = None
    created_at: datetime
    attempt_log: list[AttemptRead]


class RedeliveryAccepted(BaseModel):
    id: UUID
    status: str
    next_attempt: int
