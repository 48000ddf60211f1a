"""Session leases in KV `zaphub_leases`: claim create-if-absent with a TTL, refresh by compare-and-set,
release by deleting at our revision. Whoever holds the key is the only host serving the session."""

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import APIError
from nats.js.kv import KeyValue

from zaphub_contracts.sessions import Lease
from zaphub_contracts.streams import LEASES_BUCKET
from zaphub_runtime.bus import Bus
from zaphub_runtime.codec import encode
from zaphub_session_host.kv import WRONG_LAST_SEQUENCE, WrongRevision, create_ttl, put_ttl

log = logging.getLogger(__name__)


# Of the TTL, how long after the last confirmed write this host still acts for the session. The
# server expires the key a full TTL after that write, and only then may another host claim it, so
# the two never serve at once, even when refreshes stall (a slow reconcile pass, a NATS election).
FENCE = 0.8


class LeaseUnconfirmed(Exception):
    """This host cannot confirm it still holds the session's lease: it must not act for it now."""


@dataclass(slots=True)
class Held:
    lease: Lease
    revision: int
    refreshed_at: float  # monotonic time the last successful write was sent (at or before the server's)


class RefreshOutcome:
    KEPT = "kept"
    LOST = "lost"  # someone else holds it, or it expired: stop serving at once
    UNKNOWN = "unknown"  # NATS did not answer; still ours while the TTL has not run out


class Leases:
    def __init__(self, bus: Bus, kv: KeyValue, host_id: str, ttl: float) -> None:
        self.bus = bus
        self.kv = kv
        self.host_id = host_id
        self.ttl = ttl
        self.held: dict[UUID, Held] = {}
        self.bucket = LEASES_BUCKET.name

    async def claim(self, tenant_id: UUID, session_id: UUID) -> bool:
        """Take the lease if nobody holds it; True when this host now owns the session."""
        lease = Lease(
            session_id=session_id, tenant_id=tenant_id, host_id=self.host_id, acquired_at=datetime.now(UTC)
        )
        sent = time.monotonic()
        revision = await create_ttl(self.bus, self.bucket, str(session_id), encode(lease), self.ttl)
        if revision is None:
            return False
        self.held[session_id] = Held(lease, revision, sent)
        return True

    def confirmed(self, session_id: UUID) -> bool:
        """Whether this host may act for the session now: it holds the lease, written recently enough
        that the key cannot have expired for another host to claim."""
        held = self.held.get(session_id)
        return held is not None and time.monotonic() - held.refreshed_at < self.ttl * FENCE

    def check(self, session_id: UUID) -> None:
        if not self.confirmed(session_id):
            raise LeaseUnconfirmed("this host cannot confirm its lease of the session right now")

    async def refresh(self, session_id: UUID) -> str:
        held = self.held.get(session_id)
        if held is None:
            return RefreshOutcome.LOST
        sent = time.monotonic()
        try:
            held.revision = await put_ttl(
                self.bus, self.bucket, str(session_id), encode(held.lease), self.ttl, last=held.revision
            )
        except WrongRevision:
            self.held.pop(session_id, None)
            return RefreshOutcome.LOST
        except (NatsError, TimeoutError) as exc:
            # The key outlives us by the TTL; past most of it another host may already hold it.
            if time.monotonic() - held.refreshed_at > self.ttl * FENCE:
                self.held.pop(session_id, None)
                log.warning("lease refresh failing past its TTL", extra={"fields": {"error": repr(exc)}})
                return RefreshOutcome.LOST
            return RefreshOutcome.UNKNOWN
        held.refreshed_at = sent
        return RefreshOutcome.KEPT

    async def release(self, session_id: UUID) -> None:
        """Give the lease up now, so another host takes the session without waiting for the TTL."""
        held = self.held.pop(session_id, None)
        if held is None:
            return
        try:
            await self.kv.delete(str(session_id), last=held.revision)
        except APIError as err:
            if err.err_code not in WRONG_LAST_SEQUENCE:  # else it was no longer ours anyway
                log.warning("lease release failed; it expires by TTL", extra={"fields": {"error": repr(err)}})
        except (NatsError, TimeoutError) as exc:
            log.warning("lease release failed; it expires by TTL", extra={"fields": {"error": repr(exc)}})

    def forget(self, session_id: UUID) -> None:
        self.held.pop(session_id, None)
