"""Entry point: `zaphub-ratelimiter` runs one replica (run as many as you like)."""

import uvloop

from zaphub_ratelimiter.app import run
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.logs import setup_logging
from zaphub_runtime.telemetry import setup_tracing


def main() -> None:
    settings = RatelimiterSettings()
    setup_logging(settings.log_level, settings.log_format)
    provider = setup_tracing("ratelimiter")
    try:
        uvloop.run(run(settings))
    finally:
        provider.shutdown()  # export the spans still batched


if __name__ == "__main__":
    main()
