"""Entry point: `zaphub-ratelimiter` runs one replica (run as many as you like)."""

import uvloop

from zaphub_ratelimiter.app import run
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.process import start_process


def main() -> None:
    settings = RatelimiterSettings()
    provider = start_process("ratelimiter", settings)
    try:
        uvloop.run(run(settings))
    finally:
        provider.shutdown()  # export the spans still batched


if __name__ == "__main__":
    main()
