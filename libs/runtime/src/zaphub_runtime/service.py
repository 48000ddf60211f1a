"""Running a worker service: logging, tracing, uvloop, a stop event set by SIGTERM or SIGINT, and a
non-zero exit when a background task died (so the supervisor restarts the process)."""

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop

from zaphub_runtime.lifecycle import BackgroundTaskDied
from zaphub_runtime.process import start_process
from zaphub_runtime.settings import CommonSettings

__all__ = ["EXIT_TASK_DIED", "serve"]

log = logging.getLogger(__name__)

S = TypeVar("S", bound=CommonSettings)

EXIT_TASK_DIED = 70  # EX_SOFTWARE: the service stopped itself because a background task died


def serve(name: str, settings: S, run: Callable[[S, asyncio.Event], Awaitable[None]]) -> None:
    """Run `run(settings, stop)` until it returns; SIGTERM and SIGINT set `stop` for a graceful drain."""
    provider = start_process(name, settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    code = 0
    try:
        uvloop.run(main())
    except BackgroundTaskDied as exc:
        log.critical("%s exits: %s", name, exc)
        code = EXIT_TASK_DIED
    finally:
        with contextlib.suppress(Exception):
            provider.shutdown()
    if code:
        sys.exit(code)
