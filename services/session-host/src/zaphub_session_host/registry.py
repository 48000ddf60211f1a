"""This host's heartbeat in KV `zaphub_hosts` (a `HostInfo` with a TTL) and the view of its peers."""

import contextlib
import os
from datetime import UTC, datetime

from nats.js.kv import KeyValue

from zaphub_contracts.sessions import HostInfo
from zaphub_contracts.streams import HOSTS_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_runtime.kv_watch import KvMirror
from zaphub_session_host.kv import put_ttl


class Registry:
    def __init__(
        self, bus: Bus, kv: KeyValue, host_id: str, transport: str, capacity: int, ttl: float
    ) -> None:
        self.bus = bus
        self.kv = kv
        self.host_id = host_id
        self.transport = transport
        self.capacity = capacity
        self.ttl = ttl
        self.started_at = datetime.now(UTC)
        self.draining = False
        self.peers: KvMirror[HostInfo] = KvMirror(kv, HostInfo)

    async def start(self) -> None:
        await self.peers.start()

    async def heartbeat(self, sessions: int) -> None:
        info = HostInfo(
            host_id=self.host_id,
            pid=os.getpid(),
            transport=self.transport,
            capacity=self.capacity,
            sessions=sessions,
            started_at=self.started_at,
            heartbeat_at=datetime.now(UTC),
            draining=self.draining,
        )
        await put_ttl(self.bus, HOSTS_BUCKET.name, self.host_id, encode(info), self.ttl)

    def claim_rank(self, sessions: int) -> int:
        """How many live hosts with room are less loaded than us (ties: lower host id first)."""
        ours = (sessions / self.capacity if self.capacity else 1.0, self.host_id)
        rank = 0
        for key, (peer, _) in self.peers.entries.items():
            if key == self.host_id or peer.draining or peer.sessions >= peer.capacity:
                continue
            if (peer.sessions / peer.capacity, peer.host_id) < ours:
                rank += 1
        return rank

    async def stop(self) -> None:
        await self.peers.stop()
        with contextlib.suppress(Exception):  # the TTL removes it anyway
            await self.kv.delete(self.host_id)
