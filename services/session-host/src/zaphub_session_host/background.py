"""Work handed over without waiting and done in order by one background task: the base of the
event publisher and the auth_data saver."""

import asyncio
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class BackgroundWriter(ABC):
    """`_kick()` after queueing work; `flush` waits until `_drain` has done all of it."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    def _kick(self) -> None:
        self._idle.clear()
        self._wake.set()

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def close(self, timeout: float) -> None:
        try:
            await self.flush(timeout)
        except TimeoutError:
            log.error(
                "%s: work left undone at shutdown", self._name, extra={"fields": {"left": self._left()}}
            )
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain()
            self._idle.set()

    @abstractmethod
    async def _drain(self) -> None:
        """Do everything queued, retrying what fails, until nothing is left."""

    @abstractmethod
    def _left(self) -> int:
        """How much work is still queued."""
