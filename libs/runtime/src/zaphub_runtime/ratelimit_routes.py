"""Which ratelimiter replica to ask about a tenant: always the same one, while it lives.

Any replica decides exactly (its appends to the tenant's grant log are compare-and-set), but a replica
whose window of the tenant is behind pays for it: a failed append, a read of the log and a second
append. Asking one replica per tenant avoids that. Every client picks by rendezvous hashing over the
replicas it has heard from (the reply header names the replica), so clients that know the same replicas
agree without talking to each other. Until one is known, and every few seconds to discover new ones, a
request goes to the queue group; a replica that does not answer is forgotten at once.
"""

import hashlib
import time
from typing import Literal
from uuid import UUID

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import BaseModel

from zaphub_contracts import subjects
from zaphub_runtime.codec import encode
from zaphub_runtime.telemetry import inject_headers

__all__ = ["QUEUE_SUBJECTS", "Op", "RatelimiterRoutes"]

Op = Literal["acquire", "release", "usage"]
QUEUE_SUBJECTS: dict[Op, str] = {
    "acquire": subjects.RATELIMIT_ACQUIRE,
    "release": subjects.RATELIMIT_RELEASE,
    "usage": subjects.RATELIMIT_USAGE,
}


class RatelimiterRoutes:
    def __init__(self, discover_every: float = 2.0) -> None:
        self._replicas: list[str] = []
        self._discover_every = discover_every
        self._next_discovery = 0.0

    @property
    def replicas(self) -> list[str]:
        return list(self._replicas)

    def subject(self, tenant_id: UUID, op: Op) -> str:
        """The subject to send `op` for this tenant to."""
        now = time.monotonic()
        if not self._replicas or now >= self._next_discovery:
            self._next_discovery = now + self._discover_every
            return QUEUE_SUBJECTS[op]
        return subjects.ratelimit_replica(self.owner(tenant_id), op)

    async def request(self, nc: Client, tenant_id: UUID, op: Op, payload: BaseModel, timeout: float) -> Msg:
        """Ask the tenant's replica; when it is gone, ask the queue group instead (same timeout)."""
        subject = self.subject(tenant_id, op)
        body, headers = encode(payload), inject_headers()
        try:
            reply = await nc.request(subject, body, timeout=timeout, headers=headers)
        except nats.errors.NoRespondersError:
            if not self.lost(subject):
                raise
            reply = await nc.request(QUEUE_SUBJECTS[op], body, timeout=timeout, headers=headers)
        except (nats.errors.TimeoutError, TimeoutError):
            self.lost(subject)  # the next request tries another replica or the queue group
            raise
        self.heard(reply.headers)
        return reply

    def owner(self, tenant_id: UUID) -> str:
        tenant = tenant_id.bytes
        return max(self._replicas, key=lambda replica: _weight(tenant, replica))

    def heard(self, headers: dict[str, str] | None) -> None:
        """Note the replica that answered (from the reply's headers)."""
        replica = (headers or {}).get(subjects.RATELIMIT_REPLICA_HEADER)
        if replica and replica not in self._replicas:
            if not self._replicas:
                self._next_discovery = time.monotonic() + self._discover_every
            self._replicas.append(replica)

    def lost(self, subject: str) -> bool:
        """Forget the replica a direct subject names (it did not answer); False for a queue subject."""
        for replica in self._replicas:
            if subject.startswith(subjects.ratelimit_replica(replica, "")):
                self._replicas.remove(replica)
                return True
        return False


def _weight(tenant: bytes, replica: str) -> bytes:
    return hashlib.blake2b(tenant + replica.encode(), digest_size=8).digest()
