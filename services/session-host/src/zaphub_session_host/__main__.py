"""Entry point: `zaphub-session-host` runs one host until SIGTERM/SIGINT, then drains."""

import asyncio
import logging
import signal
import sys

from zaphub_runtime.process import start_process
from zaphub_session_host.app import SessionHost
from zaphub_session_host.auth_store import AuthStoreError
from zaphub_session_host.settings import HostSettings
from zaphub_session_host.transport.base import TransportUnavailable

log = logging.getLogger("zaphub_session_host")


async def _serve(settings: HostSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await SessionHost(settings).run(stop)


def main() -> None:
    settings = HostSettings()
    provider = start_process("session-host", settings)
    try:
        import uvloop  # optional speed-up

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(_serve(settings))
    except (TransportUnavailable, AuthStoreError) as exc:
        log.error(str(exc))
        sys.exit(2)
    finally:
        provider.shutdown()


if __name__ == "__main__":
    main()
