"""Prometheus metrics of a session-host, served on `ZAPHUB_METRICS_PORT` when set.

Sessions, capacity and auth_data writes are read from the running host when Prometheus scrapes
(`HostCollector`), so nothing on the hot paths keeps them up to date; sends handed over are counted
where the host answers the dispatcher.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from zaphub_contracts.host import HostError, HostOk
from zaphub_contracts.statuses import SessionStatus
from zaphub_session_host.auth_store import AuthSaver
from zaphub_session_host.registry import Registry
from zaphub_session_host.sessions import Sessions

SENDS = Counter(
    "zaphub_session_host_sends",
    "Send requests answered, by result: sent (handed to WhatsApp), duplicate (answered from the sent "
    "log), error (refused, with the failure reason)",
    ["host", "result", "reason"],
)


def count_send(host_id: str, reply: object) -> None:
    """Count one command's result in the answer to a send request (a HostOk or a HostError)."""
    if isinstance(reply, HostOk):
        SENDS.labels(host_id, "duplicate" if reply.duplicate else "sent", "").inc()
    elif isinstance(reply, HostError):
        SENDS.labels(host_id, "error", reply.reason.value).inc()


@dataclass(frozen=True)
class _Watched:
    sessions: Sessions
    saver: AuthSaver
    registry: Registry


class HostCollector(Collector):
    """Reads every watched host of this process at scrape time (tests run several in one process)."""

    def __init__(self) -> None:
        self._hosts: dict[str, _Watched] = {}

    def watch(self, host_id: str, sessions: Sessions, saver: AuthSaver, registry: Registry) -> None:
        self._hosts[host_id] = _Watched(sessions, saver, registry)

    def unwatch(self, host_id: str) -> None:
        self._hosts.pop(host_id, None)

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._families(dict(self._hosts))

    def _families(
        self, hosts: dict[str, _Watched] | None = None
    ) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        by_status = GaugeMetricFamily(
            "zaphub_session_host_sessions", "Sessions held by the host, by status", labels=["host", "status"]
        )
        held = GaugeMetricFamily(
            "zaphub_session_host_held_sessions", "Sessions the host holds (any status)", labels=["host"]
        )
        capacity = GaugeMetricFamily(
            "zaphub_session_host_capacity_sessions",
            "Most sessions the host may hold (ZAPHUB_MAX_CONCURRENT_SESSIONS)",
            labels=["host"],
        )
        usage = GaugeMetricFamily(
            "zaphub_session_host_capacity_usage_ratio",
            "Held sessions over capacity, 0..1 (1 when capacity is 0)",
            labels=["host"],
        )
        draining = GaugeMetricFamily(
            "zaphub_session_host_draining",
            "1 while the host drains (stops claiming sessions)",
            labels=["host"],
        )
        saves = CounterMetricFamily(
            "zaphub_session_host_auth_saves", "auth_data saved to the store", labels=["host"]
        )
        deletes = CounterMetricFamily(
            "zaphub_session_host_auth_deletes", "auth_data deleted from the store", labels=["host"]
        )
        failures = CounterMetricFamily(
            "zaphub_session_host_auth_failures",
            "auth_data writes (saves or deletes) the store refused; each is retried",
            labels=["host"],
        )
        for host_id, host in (hosts or {}).items():
            counts = host.sessions.by_status()
            for status in SessionStatus:
                by_status.add_metric([host_id, status.value], counts.get(status, 0))
            n, cap = len(host.sessions), host.registry.capacity
            held.add_metric([host_id], n)
            capacity.add_metric([host_id], cap)
            usage.add_metric([host_id], n / cap if cap else 1.0)
            draining.add_metric([host_id], 1.0 if host.registry.draining else 0.0)
            saves.add_metric([host_id], host.saver.saves)
            deletes.add_metric([host_id], host.saver.deletes)
            failures.add_metric([host_id], host.saver.failures)
        yield from (by_status, held, capacity, usage, draining, saves, deletes, failures)


COLLECTOR = HostCollector()
REGISTRY.register(COLLECTOR)
