"""Contact use cases: the tenant's session is checked here (another tenant's is 404, one not connected
409), then the owning host is asked. Contact checks are cached briefly per session, in a cache bounded
per tenant, so one tenant's checks never evict another's."""

import time
from collections import OrderedDict
from uuid import UUID

from zaphub_api.domain_errors import InvalidField
from zaphub_api.host_requests import HostRequests
from zaphub_api.schemas.phones import normalise_contact
from zaphub_api.services.sessions import require_connected
from zaphub_api.store.sessions import SessionStore
from zaphub_contracts.host import BlocklistChange, Contact, ContactCheck

CHECK_TTL = 60.0
CHECK_CACHE_PER_TENANT = 2_000  # entries across one tenant's sessions


class ContactService:
    def __init__(self, sessions: SessionStore, hosts: HostRequests, check_ttl: float = CHECK_TTL) -> None:
        self._sessions = sessions
        self._hosts = hosts
        self._ttl = check_ttl
        self._checks: dict[UUID, OrderedDict[tuple[UUID, str], tuple[float, ContactCheck]]] = {}

    async def check(self, tenant_id: UUID, session_id: UUID, numbers: list[str]) -> list[ContactCheck]:
        """One result per number, in order; numbers answered in the last minute are not asked again."""
        await require_connected(self._sessions, tenant_id, session_id)
        now = time.monotonic()
        cache = self._checks.setdefault(tenant_id, OrderedDict())
        known: dict[str, ContactCheck] = {}
        for number in numbers:
            hit = cache.get((session_id, number))
            if hit is not None and now - hit[0] < self._ttl:
                known[number] = hit[1]
        missing = list(dict.fromkeys(n for n in numbers if n not in known))
        if missing:
            for result in await self._hosts.contacts_check(tenant_id, session_id, missing):
                known[result.number] = result
                cache[(session_id, result.number)] = (now, result)
                cache.move_to_end((session_id, result.number))
            while len(cache) > CHECK_CACHE_PER_TENANT:
                cache.popitem(last=False)
        return [known[n] for n in numbers if n in known]

    async def contacts(self, tenant_id: UUID, session_id: UUID) -> list[Contact]:
        await require_connected(self._sessions, tenant_id, session_id)
        return await self._hosts.contacts(tenant_id, session_id)

    async def contact(self, tenant_id: UUID, session_id: UUID, jid: str) -> Contact:
        await require_connected(self._sessions, tenant_id, session_id)
        return await self._hosts.contact(tenant_id, session_id, contact_jid(jid))

    async def blocklist(self, tenant_id: UUID, session_id: UUID) -> list[str]:
        await require_connected(self._sessions, tenant_id, session_id)
        return await self._hosts.blocklist(tenant_id, session_id)

    async def update_blocklist(
        self, tenant_id: UUID, session_id: UUID, jid: str, change: BlocklistChange
    ) -> list[str]:
        await require_connected(self._sessions, tenant_id, session_id)
        return await self._hosts.update_blocklist(tenant_id, session_id, contact_jid(jid), change)


def contact_jid(value: str) -> str:
    """`{jid}` of a path: a person, validated like `to`; checked after the session, so another
    tenant's session is 404 whatever the path."""
    try:
        return normalise_contact(value)
    except ValueError as exc:
        raise InvalidField("jid", str(exc)) from None
