"""What every service process does before it serves: logs, traces and a garbage collector tuned for
a long-running server."""

import gc

from opentelemetry.sdk.trace import TracerProvider

from zaphub_runtime.logs import setup_logging
from zaphub_runtime.settings import CommonSettings
from zaphub_runtime.telemetry import setup_tracing

__all__ = ["GC_THRESHOLDS", "start_process"]

# Young collections every 20k allocations instead of 700: a send allocates thousands of short-lived
# objects, and with the default the collector took about 6 % of a dispatcher's CPU.
GC_THRESHOLDS = (20_000, 50, 100)


def start_process(service_name: str, settings: CommonSettings) -> TracerProvider:
    """Logging and tracing set up, the collector tuned; returns the tracer provider to shut down."""
    setup_logging(settings.log_level, settings.log_format)
    provider = setup_tracing(service_name)
    # What is loaded by now (modules, settings) lives as long as the process: never scan it again.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return provider
