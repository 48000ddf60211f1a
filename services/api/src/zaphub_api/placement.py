"""What the session-hosts report through NATS KV: who holds a session, and the live hosts' capacity."""

import contextlib
from uuid import UUID

from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue

from zaphub_contracts.sessions import HostInfo, Lease


class Placement:
    def __init__(self, leases: KeyValue, hosts: KeyValue) -> None:
        self._leases = leases
        self._hosts = hosts

    async def host_of(self, session_id: UUID) -> str | None:
        try:
            entry = await self._leases.get(str(session_id))
        except KeyNotFoundError:
            return None
        if not entry.value:
            return None
        return Lease.model_validate_json(entry.value).host_id

    async def live_hosts(self) -> list[HostInfo]:
        hosts: list[HostInfo] = []
        with contextlib.suppress(NoKeysError):
            for key in await self._hosts.keys():
                with contextlib.suppress(KeyNotFoundError):
                    entry = await self._hosts.get(key)
                    if entry.value:
                        hosts.append(HostInfo.model_validate_json(entry.value))
        return sorted(hosts, key=lambda h: h.host_id)
