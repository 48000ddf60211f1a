"""Prometheus metrics of the ratelimiter, served on `ZAPHUB_METRICS_PORT` when set."""

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "zaphub_ratelimit_decisions", "Acquire decisions by outcome and denying window", ["outcome", "window"]
)
DENIALS = Counter(
    "zaphub_ratelimit_denials", "Acquires denied, by tenant and full window", ["tenant", "window"]
)
RELEASES = Counter("zaphub_ratelimit_releases", "Tokens given back")
CONFLICTS = Counter(
    "zaphub_ratelimit_log_conflicts", "Appends that lost the compare-and-set to another replica and retried"
)
TENANTS = Gauge("zaphub_ratelimit_tenants_loaded", "Tenants whose window this replica holds in memory")
