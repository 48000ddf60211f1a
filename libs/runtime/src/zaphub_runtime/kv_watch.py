"""Following a NATS KV bucket: every current entry, then every change, with the watch restarted
when it fails (a NATS restart, a lost consumer) and every `resync` seconds; and a typed in-memory
mirror built on it."""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

__all__ = ["DELETE_OPERATIONS", "BucketWatch", "KvMirror"]

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger(__name__)

DELETE_OPERATIONS = ("DEL", "PURGE")
# key, value (None once deleted), revision
Apply = Callable[[str, bytes | None, int], None]
# A watch's consumer lives on one NATS node; when that node dies the client makes a new one from the
# last sequence it saw, and what was removed meanwhile (a TTL's expiry marker lasts a second) is never
# seen. Each fresh snapshot drops the keys it no longer holds, so a missed delete heals this quickly.
RESYNC = 15.0


class BucketWatch:
    def __init__(self, bucket: KeyValue, apply: Apply, name: str, resync: float = RESYNC) -> None:
        self._bucket = bucket
        self._apply = apply
        self._name = name
        self._resync = resync
        self._live: dict[str, int] = {}  # key -> revision applied, for keys not deleted since
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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._watch_once(ready), self._resync)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch of %s failed; restarting it", self._name)
                await asyncio.sleep(0.5)

    async def _watch_once(self, ready: asyncio.Future[None]) -> None:
        """One watch: the snapshot (then keys it lacks are deleted), then changes until cancelled."""
        watcher = await self._bucket.watchall()
        snapshot: set[str] | None = set()
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are all in
                    if snapshot is not None:
                        for key in set(self._live) - snapshot:
                            self._set(key, None, 0)
                        snapshot = None
                    if not ready.done():
                        ready.set_result(None)
                    continue
                deleted = entry.operation in DELETE_OPERATIONS or not entry.value
                if snapshot is not None and not deleted:
                    snapshot.add(entry.key)
                self._set(entry.key, None if deleted else entry.value, entry.revision or 0)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _set(self, key: str, value: bytes | None, revision: int) -> None:
        if value is None:
            if self._live.pop(key, None) is None and revision == 0:
                return  # a resync's delete of a key that is gone already
        elif self._live.get(key) == revision:
            return  # a resync's snapshot repeating what was applied
        else:
            self._live[key] = revision
        self._apply(key, value, revision)


class KvMirror(Generic[M]):
    """A bucket's live keys decoded as `model`, kept current in memory by one watch.

    `on_change(key, value)` runs after each change (`value` None once deleted), so an owner can keep
    an index of its own. A value that cannot be decoded is logged and the previous one kept: during a
    rolling upgrade a newer writer must not make an older reader drop what it holds.
    """

    def __init__(
        self,
        kv: KeyValue,
        model: type[M],
        on_change: Callable[[str, M | None], None] | None = None,
        name: str | None = None,
    ) -> None:
        self.kv = kv
        self.model = model
        self.entries: dict[str, tuple[M, int]] = {}  # key -> (value, revision)
        self._on_change = on_change
        self.name = name or f"kv-mirror-{model.__name__}"
        self._watch = BucketWatch(kv, self._apply, self.name)

    def get(self, key: str) -> M | None:
        entry = self.entries.get(key)
        return entry[0] if entry is not None else None

    async def start(self, timeout: float = 10.0) -> None:
        """Returns once every entry present now is in `entries`."""
        await self._watch.start(timeout)

    async def stop(self) -> None:
        await self._watch.stop()

    def _apply(self, key: str, value: bytes | None, revision: int) -> None:
        if value is None:
            if self.entries.pop(key, None) is not None and self._on_change:
                self._on_change(key, None)
            return
        try:
            decoded = self.model.model_validate_json(value)
        except ValidationError:
            log.warning("unreadable KV value kept out", extra={"fields": {"key": key, "mirror": self.name}})
            return
        self.entries[key] = (decoded, revision)
        if self._on_change:
            self._on_change(key, decoded)
