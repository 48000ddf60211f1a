"""Webhooks on the bus: a tenant's webhook as mirrored to the `zaphub_webhooks` bucket, one delivery
queued on `ZAPHUB_WEBHOOKS`, and the record of each delivery attempt the API projects into Postgres."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field

from zaphub_contracts.events import EVENT_NAMESPACE

ALL_EVENTS = "*"


class WebhookConfig(BaseModel):
    """Value of key `<tenant_id>.<webhook_id>` in the webhooks bucket, written by the API."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    tenant_id: UUID
    url: str
    events: tuple[str, ...] = Field(description="Event short names such as message.received, or '*'")
    secret: str = Field(
        default="", description="Plain signing secret, as written by APIs before sealed_secret (read only)"
    )
    sealed_secret: str | None = Field(
        default=None,
        description="The HMAC-SHA256 key of the ZapHub-Signature header, sealed with the key ring "
        "(associated data: the bucket key)",
    )
    active: bool = True

    def wants(self, short: str) -> bool:
        return self.active and (ALL_EVENTS in self.events or short in self.events)


def webhook_key(tenant_id: UUID, webhook_id: UUID) -> str:
    return f"{tenant_id}.{webhook_id}"


def secret_aad(tenant_id: UUID, webhook_id: UUID) -> bytes:
    """What a sealed webhook secret is bound to: it opens only under its own bucket key."""
    return webhook_key(tenant_id, webhook_id).encode()


def delivery_id(event_id: UUID, webhook_id: UUID) -> UUID:
    """Stable per (event, webhook), so a redelivered event never queues a second delivery."""
    return uuid5(EVENT_NAMESPACE, f"webhook-delivery/{event_id}/{webhook_id}")


class WebhookDelivery(BaseModel):
    """One event to POST to one webhook; retried by JetStream redelivery until it succeeds or gives up."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    delivery_id: UUID
    webhook_id: UUID
    tenant_id: UUID
    session_id: UUID
    event_id: UUID
    event_type: str = Field(description="Short name, e.g. message.sent")
    event_seq: int | None = Field(default=None, description="Sequence of the event on ZAPHUB_EVT")
    body: str = Field(description="The CloudEvent JSON, POSTed byte for byte")
    first_attempt: int = Field(
        default=1, ge=1, description="Number of the next attempt (continued by retries and redeliveries)"
    )
    not_before: datetime | None = Field(default=None, description="Not attempted before this time")
    deferrals: int = Field(
        default=0, ge=0, description="Times put back without an attempt (tenant at its cap, breaker open)"
    )

    @property
    def msg_id(self) -> str:
        """Deduplicates a repeated enqueue of the same delivery, but not a retry or a redelivery."""
        base = f"{self.delivery_id}:{self.first_attempt}"
        return base if not self.deferrals else f"{base}:d{self.deferrals}"


class AttemptStatus(StrEnum):
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"  # failed, another attempt is scheduled
    FAILED = "failed"  # failed and given up (dead-lettered) or the webhook is gone


class WebhookAttempt(BaseModel):
    """What happened on one delivery attempt; published by the dispatcher, projected by the API."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    delivery_id: UUID
    webhook_id: UUID
    tenant_id: UUID
    session_id: UUID
    event_id: UUID
    event_type: str
    event_seq: int | None = None
    attempt: int = Field(ge=1)
    status: AttemptStatus
    response_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    at: datetime
    next_attempt_at: datetime | None = None
