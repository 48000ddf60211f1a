"""One start and stop for every service: an exit stack of what was opened, background tasks that are
watched, and a stop event.

A start that fails half-way closes what it had opened (the stack unwinds); a shutdown step that fails
is logged and the others still run; a background task that ends on its own, while the service is not
stopping, marks the service failed, so `/ready` goes false and the process exits for its supervisor.
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from prometheus_client import Counter

from zaphub_runtime.settings import CommonSettings

__all__ = ["BackgroundTaskDied", "Lifecycle", "instance_id"]

log = logging.getLogger(__name__)

T = TypeVar("T")

TASK_DEATHS = Counter(
    "zaphub_background_task_deaths",
    "Background tasks that ended while their service was running (the service then exits)",
    ["task"],
)


def instance_id(settings: CommonSettings) -> str:
    """The name of this replica: `ZAPHUB_INSTANCE_ID`, or host-pid."""
    return settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"


class BackgroundTaskDied(RuntimeError):
    """A background task a service depends on ended while the service was running."""


class Lifecycle:
    """`async with Lifecycle(name) as life:` opens resources with `enter`/`on_close`, starts watched
    tasks with `spawn`, then waits on `life.stop`; leaving the block closes everything in reverse."""

    def __init__(self, name: str, stop: asyncio.Event | None = None, task_grace: float = 5.0) -> None:
        self.name = name
        self.stop = stop or asyncio.Event()  # set by a signal (`serve`), by `close`, or by a task's death
        self.failure: str | None = None  # the task whose death failed the service
        self._task_grace = task_grace
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False

    @property
    def healthy(self) -> bool:
        return self.failure is None

    async def __aenter__(self) -> Self:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopping = True
        self.stop.set()
        await self._stop_tasks()
        await self._stack.__aexit__(exc_type, exc, tb)
        if exc is None and self.failure is not None:
            raise BackgroundTaskDied(f"{self.name}: background task {self.failure!r} ended")

    async def enter(self, cm: contextlib.AbstractAsyncContextManager[T]) -> T:
        """Enter an async context manager now; it is exited at stop."""
        return await self._stack.enter_async_context(cm)

    def on_close(self, step: Callable[[], Awaitable[Any] | Any], name: str | None = None) -> None:
        """Run `step` at stop (in reverse order of registration); its failure is logged, never skips
        the steps registered before it."""
        label = name or getattr(step, "__qualname__", repr(step))

        async def guarded() -> None:
            try:
                result = step()
                if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                    await result
            except Exception:
                log.exception("%s: shutdown step %s failed", self.name, label)

        self._stack.push_async_callback(guarded)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a background task the service depends on: if it ends before stop, the service fails."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.append(task)
        task.add_done_callback(self._watch)
        return task

    def _watch(self, task: asyncio.Task[Any]) -> None:
        if self._stopping or self.stop.is_set() or task.cancelled():
            return
        exc = task.exception()
        self.failure = self.failure or task.get_name()
        TASK_DEATHS.labels(task.get_name()).inc()
        log.critical(
            "%s: background task %s ended; the service stops",
            self.name,
            task.get_name(),
            exc_info=exc,
        )
        self.stop.set()

    async def _stop_tasks(self) -> None:
        """Tasks watch `stop` and finish by themselves; those that do not within the grace are cancelled."""
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            _, late = await asyncio.wait(pending, timeout=self._task_grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=self._task_grace)
        for task in self._tasks:  # retrieve what tasks that failed during the stop raised
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("%s: task %s failed while stopping", self.name, task.get_name())
