"""Group commit: calls that arrive while a batch is being written wait and go out together in the next.

An idle caller goes out at once, alone (no added latency); under load one round trip carries many
calls, so the cost per call falls as the load rises. Each call gets its own result or its own error.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Flush", "GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R | BaseException]]]


class GroupCommit(Generic[T, R]):
    """`submit(item)` returns `flush(batch)[i]` for its item (raising it when it is an exception).

    At most `concurrency` flushes run at once, each of at most `max_batch` items, in arrival order. A
    flush that raises fails every call of its batch with that error.
    """

    def __init__(self, flush: Flush[T, R], max_batch: int = 256, concurrency: int = 1) -> None:
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        self._flush = flush
        self._max_batch = max_batch
        self._concurrency = concurrency
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._running) < self._concurrency:
            task = asyncio.create_task(self._drain())
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        # The batch belongs to every caller in it: one that gives up must not cancel it for the rest.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._flush([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"flush answered {len(results)} results for {len(batch)} items")
            except BaseException as exc:
                for _, future in batch:
                    if future.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        future.cancel()
                    else:
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def wait_idle(self) -> None:
        """Until every submitted call has its answer (on shutdown)."""
        while self._running:
            await asyncio.wait(set(self._running))
