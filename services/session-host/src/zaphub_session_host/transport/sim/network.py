"""The simulator transport of one process: the sessions online in it, by JID, its end of the network
between host processes (wire.py, once the host's NATS connection is attached), the network's groups
(groups.py), and the delivered log that several host processes share.

A send is appended as one JSON line (`message_id`, `whatsapp_id`, `session_id`, `to`, `type`, `time`)
to `<data_dir>/sim/delivered.jsonl` with a single O_APPEND write, so concurrent processes never
interleave lines.
"""

import json
import os
import random
from collections import deque
from pathlib import Path
from uuid import UUID

from zaphub_contracts.streams import SIM_GROUPS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_session_host.media_fetch import MAX_MEDIA_BYTES
from zaphub_session_host.transport.base import ConnectionEvents, Transport
from zaphub_session_host.transport.sim.connection import SimConnection, SimIdentity
from zaphub_session_host.transport.sim.faults import SimFaults
from zaphub_session_host.transport.sim.groups import GroupDirectory, KvGroups, MemoryGroups
from zaphub_session_host.transport.sim.wire import NatsWire, SimFrame


class SimTransport(Transport):
    """The simulated WhatsApp network of this process."""

    name = "sim"

    def __init__(
        self,
        data_dir: Path,
        autopair: bool = True,
        pair_delay: float = 2.0,
        faults: SimFaults | None = None,
        rng: random.Random | None = None,
        egress: EgressPolicy | None = None,
        max_media_bytes: int = MAX_MEDIA_BYTES,
    ) -> None:
        self.log_path = data_dir / "sim" / "delivered.jsonl"
        self.autopair = autopair
        self.pair_delay = pair_delay
        self.faults = faults or SimFaults()
        self.rng = rng or random.Random()
        self.egress = egress or EgressPolicy()
        self.max_media_bytes = max_media_bytes
        self._http: EgressClient | None = None
        # Messages of `inbound` faults not yet taken by their session, by session: kept while it is
        # offline, as WhatsApp keeps them.
        self.undelivered: dict[UUID, deque[tuple[str, int]]] = {}
        self.online: dict[str, SimConnection] = {}  # JID -> connected session, for in-process delivery
        self.wire: NatsWire | None = None  # None: sessions reach only sessions of this process
        self.groups = GroupDirectory(self)  # in this process until attached, then in a bucket
        self._log_fd: int | None = None

    @property
    def http(self) -> EgressClient:
        """The media client: a send's URL is downloaded as the neonize transport does (media_fetch)."""
        if self._http is None:
            self._http = EgressClient(self.egress, user_agent="zaphub-session-host")
        return self._http

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def attach(self, bus: Bus) -> None:
        self.wire = await NatsWire.open(bus, self._presence)
        self.groups.store = KvGroups(await bus.kv(SIM_GROUPS_BUCKET))

    async def detach(self) -> None:
        if self.wire is not None:
            await self.wire.close()
            self.wire = None
            self.groups.store = MemoryGroups()

    async def close(self) -> None:
        await self.detach()
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None

    def _presence(self, frame: SimFrame) -> None:
        """An account's availability, from any host process: every other session on line here sees it."""
        for jid, peer in list(self.online.items()):
            if jid != frame.sender:
                peer.presence.seen(frame)

    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> SimConnection:
        identity = SimIdentity.model_validate_json(auth_data) if auth_data else None
        return SimConnection(self, session_id, identity, events)

    def record_delivery(self, entry: dict[str, str]) -> None:
        """Append one line; a single O_APPEND write, so concurrent processes never interleave lines."""
        if self._log_fd is None:
            raise RuntimeError("SimTransport.start() was not awaited")
        # A page-cache append of one short line: cheaper inline than a hop to a thread.
        os.write(self._log_fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
