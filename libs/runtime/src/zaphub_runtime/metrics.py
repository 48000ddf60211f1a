"""Prometheus metrics every worker shares: the `/metrics` listener on `ZAPHUB_METRICS_PORT`, the naming
rules, and the list of series a registry exposes (for dashboards and alert rules to be checked against).

Names follow the Prometheus conventions: `zaphub_<service>_<what>_<unit>`, counters end in `_total`
(prometheus-client adds it), durations are in seconds, ratios are 0..1 and end in `_ratio`.
"""

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.registry import CollectorRegistry

__all__ = [
    "LATENCY_BUCKETS",
    "PREFIX",
    "MetricsServer",
    "metric_name",
    "registry_names",
    "start_metrics_server",
]

log = logging.getLogger(__name__)

PREFIX = "zaphub_"
# Seconds, from a local request/reply hop (~1 ms) to a message that waited out backoff or a rate window.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


def metric_name(service: str, what: str) -> str:
    """`zaphub_<service>_<what>`, with the dashes of a service name made underscores."""
    return f"{PREFIX}{service.replace('-', '_')}_{what}"


@dataclass
class MetricsServer:
    """A running `/metrics` listener; `close()` stops it."""

    port: int
    _server: WSGIServer
    _thread: threading.Thread

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics_server(
    port: int, addr: str = "0.0.0.0", registry: CollectorRegistry = REGISTRY
) -> MetricsServer | None:
    """Serve `registry` on `http://<addr>:<port>/metrics` from a daemon thread; None when `port` is 0.

    The thread only renders what the collectors hold; it never touches the event loop.
    """
    if not port:
        return None
    server, thread = start_http_server(port, addr=addr, registry=registry)
    log.info("metrics listening", extra={"fields": {"port": port}})
    return MetricsServer(port, server, thread)


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def registry_names(registry: CollectorRegistry = REGISTRY) -> set[str]:
    """Every series name the metric families in `registry` expose (`x_total`, `x_bucket`, ...),
    including labelled metrics that have no children yet."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
    return names
