"""Processes the supervisor keeps alive: services restarted on death with backoff, and the servers."""

import asyncio
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from zaphub_devstack.output import LineSink
from zaphub_devstack.processes import Spawned, spawn


@dataclass
class Backoff:
    """Delay before a restart: doubles per quick death, back to `initial` once a run lasted `reset_after`."""

    initial: float = 0.5
    maximum: float = 5.0
    reset_after: float = 30.0
    _next: float = 0.0

    def after_run_of(self, lived: float) -> float:
        if lived >= self.reset_after or not self._next:
            self._next = self.initial
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return delay


class Child:
    """One service instance: started, restarted whenever it dies until `stop()`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        output: LineSink,
        log: LineSink,
        on_change: Callable[[], None],
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.restarts = 0
        self._output = output
        self._log = log  # the supervisor's own messages about this child
        self._on_change = on_change
        self._process: Spawned | None = None
        self._stopping = asyncio.Event()
        self._backoff = Backoff()

    @property
    def pid(self) -> int | None:
        if self._process is None or not self._process.running:
            return None
        return self._process.proc.pid

    async def run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self._process = await spawn(self.argv, self._output, env=self.env)
            except OSError as exc:  # e.g. the console script is not installed
                self._log(f"{self.name} cannot start: {exc}")
                code: int | str = "no start"
            else:
                self._on_change()
                code = await self._process.wait()
            if self._stopping.is_set():
                break
            delay = self._backoff.after_run_of(time.monotonic() - started)
            self._log(f"{self.name} exited ({_describe(code)}); restarting in {delay:.1f} s")
            self._on_change()
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                self.restarts += 1

    async def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; no restart afterwards."""
        self._stopping.set()
        if self._process is not None:
            await self._process.stop(signal.SIGTERM, grace)


class Server(Protocol):
    """What `keep_server_alive` needs of `EmbeddedNats` and `EmbeddedPostgres`."""

    async def start(self, ready_within: float = ...) -> None: ...
    async def wait(self) -> int: ...


async def keep_server_alive(
    name: str, server: Server, log: LineSink, on_restart: Callable[[], None], hold: Path | None = None
) -> None:
    """Restart `server` (same port, same data) whenever it exits, unless the file `hold` exists: then
    once it is removed (a way to keep a server down, as in an outage). Cancel this task before stopping
    the server."""
    backoff = Backoff()
    started = time.monotonic()
    while True:
        code = await server.wait()
        delay = backoff.after_run_of(time.monotonic() - started)
        if _held(hold):
            log(f"{name} exited ({_describe(code)}); held down until {hold} is removed")
            while _held(hold):  # noqa: ASYNC110 - a file someone removes: nothing to await instead
                await asyncio.sleep(0.1)
        else:
            log(f"{name} exited ({_describe(code)}); restarting in {delay:.1f} s")
        await asyncio.sleep(delay)
        started = time.monotonic()
        try:
            await server.start()
        except Exception as exc:  # any start failure is retried the same way
            log(f"{name} restart failed: {exc}")
            continue
        log(f"{name} is back")
        on_restart()


def _held(hold: Path | None) -> bool:
    return hold is not None and hold.exists()


def _describe(code: int | str) -> str:
    if isinstance(code, int) and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"
