"""The lifecycle every embedded server shares: one child process, stopped, killed or restarted."""

import signal
from abc import ABC, abstractmethod
from typing import ClassVar, Self

from zaphub_devstack.errors import ServerError
from zaphub_devstack.processes import Spawned


class ChildServer(ABC):
    """A server run as a child process; subclasses start it and say how it stops gracefully."""

    NAME: ClassVar[str]
    STOP_SIGNAL: ClassVar[signal.Signals] = signal.SIGTERM
    STOP_GRACE: ClassVar[float] = 10.0  # seconds before the graceful stop becomes SIGKILL
    READY_WITHIN: ClassVar[float] = 20.0

    _process: Spawned | None = None

    @abstractmethod
    async def start(self, ready_within: float | None = None) -> None:
        """Start it (or start it again on the same port and data) and wait until it serves."""

    def _after_stop(self) -> None:  # noqa: B027 - a server with nothing to clean up needs none
        """Clean up what the process leaves behind."""

    @property
    def pid(self) -> int | None:
        return self._process.proc.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    async def wait(self) -> int:
        """Until the server process exits, for whatever reason; its exit code."""
        if self._process is None:
            raise ServerError(f"{self.NAME} has not been started")
        return await self._process.wait()

    async def stop(self, grace: float | None = None) -> None:
        """Graceful shutdown, SIGKILL when it takes longer than `grace` seconds."""
        if self._process is not None:
            await self._process.stop(self.STOP_SIGNAL, self.STOP_GRACE if grace is None else grace)
        self._after_stop()

    async def kill(self) -> None:
        """SIGKILL, as a crash would; the server recovers its data on the next start."""
        if self._process is not None:
            await self._process.stop(signal.SIGKILL, 10)
        self._after_stop()

    async def restart(self, ready_within: float | None = None) -> None:
        """Stop if running, then start on the same port and data."""
        await self.stop()
        await self.start(ready_within)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
