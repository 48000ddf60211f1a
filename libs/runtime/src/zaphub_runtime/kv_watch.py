"""Following a NATS KV bucket: every current entry, then every change, with the watch restarted
when it fails (a NATS restart, a lost consumer)."""

import asyncio
import contextlib
import logging
from collections.abc import Callable

from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

DELETE_OPERATIONS = ("DEL", "PURGE")
# key, value (None once deleted), revision
Apply = Callable[[str, bytes | None, int], None]


class BucketWatch:
    def __init__(self, bucket: KeyValue, apply: Apply, name: str) -> None:
        self._bucket = bucket
        self._apply = apply
        self._name = name
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Returns once every entry present now has been applied."""
        ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._follow(ready), name=f"watch-{self._name}")
        await asyncio.wait_for(asyncio.shield(ready), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self, ready: asyncio.Future[None]) -> None:
        while True:
            try:
                watcher = await self._bucket.watchall()
                try:
                    async for entry in watcher:
                        if entry is None:  # the initial values are all in
                            if not ready.done():
                                ready.set_result(None)
                            continue
                        deleted = entry.operation in DELETE_OPERATIONS or not entry.value
                        self._apply(entry.key, None if deleted else entry.value, entry.revision or 0)
                finally:
                    with contextlib.suppress(Exception):
                        await watcher.stop()  # type: ignore[no-untyped-call]
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch of %s failed; restarting it", self._name)
                await asyncio.sleep(0.5)
