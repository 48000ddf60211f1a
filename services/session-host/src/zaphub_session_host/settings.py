"""Typed settings of the session-host, read once from `ZAPHUB_*` environment variables."""

import re
from enum import StrEnum

from pydantic import AliasChoices, Field, SecretStr

from zaphub_runtime.lifecycle import instance_id
from zaphub_runtime.settings import CommonSettings
from zaphub_session_host.transport.base.history import HistorySync


class TransportName(StrEnum):
    NEONIZE = "neonize"
    SIM = "sim"


class AuthStoreName(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class HostSettings(CommonSettings):
    transport: TransportName = Field(
        default=TransportName.NEONIZE, description="neonize (real WhatsApp) or sim (built-in simulator)"
    )
    max_concurrent_sessions: int = Field(
        default=100,
        ge=0,
        # The seed's own name is read too, so a Node.js ZapHub deployment's setting carries over.
        validation_alias=AliasChoices("ZAPHUB_MAX_CONCURRENT_SESSIONS", "MAX_CONCURRENT_SESSIONS"),
        description="Most sessions this host holds (MAX_CONCURRENT_SESSIONS is read too)",
    )
    spool_max_bytes: int = Field(
        default=256 * 1024 * 1024,
        gt=0,
        description="Bytes of events a host keeps on disk while NATS is away; when full, it disconnects"
        " its sessions from WhatsApp until they are published",
    )
    history_sync: HistorySync = Field(
        default=HistorySync.RECENT,
        description="What a newly paired session imports of its chats' past: recent (WhatsApp's default"
        " sync), full (requireFullSync: all the phone holds) or off (nothing imported)",
    )
    history_max_messages: int = Field(
        default=20_000,
        ge=0,
        description="Most messages one session imports from WhatsApp's history sync (per host run); the"
        " oldest beyond are dropped",
    )
    sim_autopair: bool = Field(default=True, description="sim: pair a new session by itself after a QR")
    sim_pair_delay: float = Field(default=2.0, ge=0.0, description="sim: seconds from first QR to pairing")
    sim_faults: str = Field(default="", description="sim: fault spec, see transport/sim/faults.py")
    # Whole seconds: the server's per-message TTL has one-second resolution.
    lease_ttl: float = Field(
        default=6.0, ge=2.0, description="Seconds a lease or heartbeat outlives its host"
    )
    reconcile_interval: float = Field(default=1.0, gt=0.0, description="Seconds between reconciler passes")
    # Longer than a reconcile pass: the less-loaded host gets a pass to claim before this one does,
    # so a burst of new sessions spreads over the hosts instead of landing on one.
    claim_stagger: float = Field(
        default=1.5, ge=0.0, description="Extra wait before claiming, per less-loaded live host with room"
    )
    drain_timeout: float = Field(default=15.0, gt=0.0, description="Seconds a SIGTERM drain may take")
    auth_store: AuthStoreName = Field(
        default=AuthStoreName.LOCAL, description="Where auth_data lives: local (<data_dir>/auth) or s3"
    )
    auth_key: SecretStr = Field(
        default=SecretStr(""),
        description="base64 of 32 bytes, a lone key of the ring (after ZAPHUB_SECRET_KEYS, id derived from "
        "the key); with s3 this or ZAPHUB_SECRET_KEYS is required. Neither set with the local store: a key "
        "is generated once into <data_dir>/auth_key (mode 0600)",
    )
    auth_save_interval: float = Field(
        default=60.0, gt=0.0, description="Seconds between periodic saves of changed auth_data"
    )
    s3_bucket: str = Field(default="zaphub-auth", description="Bucket of auth_data (created if absent)")

    def host_id(self) -> str:
        """This replica's name: `instance_id`, else `<hostname>-<pid>`, in KV-key-safe characters."""
        return re.sub(r"[^-_=a-zA-Z0-9]", "-", instance_id(self))
