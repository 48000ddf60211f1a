"""Running a worker service: logging, tracing, uvloop, and a stop event set by SIGTERM or SIGINT."""

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from zaphub_runtime.process import start_process
from zaphub_runtime.settings import CommonSettings

S = TypeVar("S", bound=CommonSettings)


def serve(name: str, settings: S, run: Callable[[S, asyncio.Event], Awaitable[None]]) -> None:
    """Run `run(settings, stop)` until it returns; SIGTERM and SIGINT set `stop` for a graceful drain."""
    provider = start_process(name, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
    finally:
        with contextlib.suppress(Exception):
            provider.shutdown()
