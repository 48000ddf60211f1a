"""Session statistics in the seed's shape: a tenant's (its quota and limits) and the installation's
(the live hosts' capacity, every tenant's sessions, the seed's thresholds crossed)."""

from uuid import UUID

from zaphub_api.placement import Placement
from zaphub_api.schemas.sessions import Capacity, SessionStats
from zaphub_api.settings import ApiSettings
from zaphub_api.store.sessions import SessionStore
from zaphub_api.store.tenants import TenantStore

STATS_STATUSES = ("connected", "qr_pending", "disconnected", "failed", "connecting", "logged_out", "queued")


class StatsService:
    def __init__(
        self, sessions: SessionStore, tenants: TenantStore, placement: Placement, settings: ApiSettings
    ) -> None:
        self._sessions = sessions
        self._tenants = tenants
        self._placement = placement
        self._settings = settings

    async def tenant(self, tenant_id: UUID) -> SessionStats:
        """The tenant's view: its connected sessions against its quota, and its rate limits."""
        tenant = await self._tenants.get(tenant_id)
        by_status = {s: 0 for s in STATS_STATUSES} | await self._sessions.count_by_status(tenant_id)
        active = by_status.get("connected", 0)
        limits = tenant.rate_limits
        return SessionStats(
            capacity=_capacity(active, tenant.max_sessions),
            sessions_by_status=by_status,
            limits={
                "max_sessions": tenant.max_sessions,
                "rate_per_minute": limits.per_minute,
                "rate_per_hour": limits.per_hour,
                "rate_per_day": limits.per_day,
                "db_pool_max": self._settings.db_pool_max,
            },
        )

    async def installation(self) -> SessionStats:
        """The operator's view: the live hosts' capacity (hosts bucket), every tenant's sessions, the
        installation's limits, and the seed's thresholds crossed."""
        hosts = await self._placement.live_hosts()
        by_status = dict.fromkeys(STATS_STATUSES, 0) | await self._sessions.count_by_status(None)
        capacity = _capacity(by_status["connected"], sum(h.capacity for h in hosts))
        usage = capacity.usage_percent
        defaults = self._settings.default_limits
        return SessionStats(
            capacity=capacity,
            sessions_by_status=by_status,
            limits={
                "db_pool_max": self._settings.db_pool_max,
                "hosts": len(hosts),
                "max_sessions_per_host": max((h.capacity for h in hosts), default=0),
                "tenant_max_sessions": self._settings.tenant_max_sessions,
                "rate_per_minute": defaults.per_minute,
                "rate_per_hour": defaults.per_hour,
                "rate_per_day": defaults.per_day,
            },
            alerts=[
                name
                for name, crossed in (
                    ("warning", usage > 80),
                    ("critical", usage > 95),
                    ("blocked", capacity.active >= capacity.max),
                )
                if crossed
            ],
        )


def _capacity(active: int, maximum: int) -> Capacity:
    usage = round(100.0 * active / maximum, 2) if maximum else 0.0
    return Capacity(active=active, max=maximum, available=max(maximum - active, 0), usage_percent=usage)
