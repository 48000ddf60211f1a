"""Typed settings of the session-host, read once from `ZAPHUB_*` environment variables."""

import os
import re
import socket
from enum import StrEnum

from pydantic import Field

from zaphub_runtime.settings import CommonSettings


class TransportName(StrEnum):
    NEONIZE = "neonize"
    SIM = "sim"


class HostSettings(CommonSettings):
    transport: TransportName = Field(
        default=TransportName.NEONIZE, description="neonize (real WhatsApp) or sim (built-in simulator)"
    )
    max_concurrent_sessions: int = Field(default=100, ge=0, description="Most sessions this host holds")
    sim_autopair: bool = Field(default=True, description="sim: pair a new session by itself after a QR")
    sim_pair_delay: float = Field(default=2.0, ge=0.0, description="sim: seconds from first QR to pairing")
    sim_faults: str = Field(default="", description="sim: fault spec, see transport/sim.py")
    # Whole seconds: the server's per-message TTL has one-second resolution.
    lease_ttl: float = Field(
        default=6.0, ge=2.0, description="Seconds a lease or heartbeat outlives its host"
    )
    reconcile_interval: float = Field(default=1.0, gt=0.0, description="Seconds between reconciler passes")
    claim_stagger: float = Field(
        default=0.5, ge=0.0, description="Extra wait before claiming, per busier-than-us host with room"
    )
    drain_timeout: float = Field(default=15.0, gt=0.0, description="Seconds a SIGTERM drain may take")

    def host_id(self) -> str:
        """This replica's name: `instance_id`, else `<hostname>-<pid>`, in KV-key-safe characters."""
        raw = self.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        return re.sub(r"[^-_=a-zA-Z0-9]", "-", raw)
