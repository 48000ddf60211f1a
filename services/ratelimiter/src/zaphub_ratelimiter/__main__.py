"""Entry point: `zaphub-ratelimiter` runs one replica (run as many as you like)."""

from zaphub_ratelimiter.app import run
from zaphub_ratelimiter.settings import RatelimiterSettings
from zaphub_runtime.service import serve


def main() -> None:
    serve("ratelimiter", RatelimiterSettings(), run)


if __name__ == "__main__":
    main()
