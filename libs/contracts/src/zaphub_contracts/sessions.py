"""Session placement state kept in NATS KV: desired sessions, leases, live hosts, handed-over sends."""

import hashlib
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class DesiredSession(BaseModel):
    """A session that should be running; key `<tenant_id>.<session_id>` in `zaphub_sessions`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    tenant_id: UUID
    session_id: UUID
    name: str
    requested_at: datetime

    @property
    def key(self) -> str:
        return desired_key(self.tenant_id, self.session_id)


class Lease(BaseModel):
    """Ownership of a session by one host; key `<session_id>` in `zaphub_leases`, with a TTL."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    session_id: UUID
    tenant_id: UUID
    host_id: str
    acquired_at: datetime


class HostInfo(BaseModel):
    """A live session-host; key `<host_id>` in `zaphub_hosts`, refreshed by heartbeat with a TTL."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host_id: str
    pid: int
    transport: str
    capacity: int = Field(description="MAX_CONCURRENT_SESSIONS of this host")
    sessions: int = Field(description="Sessions held now")
    started_at: datetime
    heartbeat_at: datetime
    draining: bool = False


class HandedOver(BaseModel):
    """Record that a message was handed to WhatsApp; key `<message_id>` in `zaphub_sent`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    message_id: UUID
    whatsapp_id: str
    session_id: UUID
    sent_at: datetime
    host_id: str


def desired_key(tenant_id: UUID, session_id: UUID) -> str:
    return f"{tenant_id}.{session_id}"


def whatsapp_message_id(message_id: UUID) -> str:
    """WhatsApp message id derived from the ZapHub id, in WhatsApp's own shape (3EB0 + 18 hex).

    A resend of the same ZapHub message in a crash window carries the same id, and WhatsApp
    shows it to the recipient once.
    """
    return "3EB0" + hashlib.sha256(message_id.bytes).hexdigest()[:18].upper()
