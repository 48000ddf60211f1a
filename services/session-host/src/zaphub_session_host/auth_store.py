"""Where sessions' auth_data lives between connections and hosts, keyed `<tenant_id>/<session_id>/...`.

`AuthStore` is the interface (an S3 backend and AES-GCM at rest slot in behind it);
`LocalDirAuthStore` keeps it under `<data_dir>/auth/`. `AuthSaver` writes in the background so a
transport callback never waits on storage: the latest value of each session wins.
"""

import asyncio
import logging
import os
from abc import ABC, abstractmethod
from pathlib import Path
from uuid import UUID

log = logging.getLogger(__name__)

AUTH_FILE = "auth.bin"


def auth_key(tenant_id: UUID, session_id: UUID) -> str:
    """The object key of a session's auth_data; tenants and sessions never share a prefix."""
    return f"{tenant_id}/{session_id}/{AUTH_FILE}"


class AuthStore(ABC):
    @abstractmethod
    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None: ...

    @abstractmethod
    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None: ...

    @abstractmethod
    async def delete(self, tenant_id: UUID, session_id: UUID) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Raise when the store is unreachable (for readiness)."""


class LocalDirAuthStore(AuthStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, tenant_id: UUID, session_id: UUID) -> Path:
        return self.root / auth_key(tenant_id, session_id)

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        path = self._path(tenant_id, session_id)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def save(self, tenant_id: UUID, session_id: UUID, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(tenant_id, session_id), data)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # Write aside and rename, so a crash never leaves half an identity behind.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    async def delete(self, tenant_id: UUID, session_id: UUID) -> None:
        await asyncio.to_thread(self._path(tenant_id, session_id).unlink, True)

    async def ping(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)


class AuthSaver:
    """Background writer of auth_data: `put` never blocks, `flush` waits until everything is stored."""

    RETRY_AFTER = 1.0

    def __init__(self, store: AuthStore) -> None:
        self.store = store
        self._pending: dict[tuple[UUID, UUID], bytes | None] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self.saves = 0  # for metrics

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="auth-saver")

    def put(self, tenant_id: UUID, session_id: UUID, data: bytes | None) -> None:
        """Store `data` (None deletes) soon; a later put for the same session replaces it."""
        self._pending[(tenant_id, session_id)] = data
        self._idle.clear()
        self._wake.set()

    def pending(self, tenant_id: UUID, session_id: UUID) -> tuple[bool, bytes | None]:
        """Whether a write for the session is still queued, and its value (fresher than the store)."""
        key = (tenant_id, session_id)
        return (key in self._pending, self._pending.get(key))

    async def load(self, tenant_id: UUID, session_id: UUID) -> bytes | None:
        queued, data = self.pending(tenant_id, session_id)
        return data if queued else await self.store.load(tenant_id, session_id)

    async def flush(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = next(iter(self._pending))
                data = self._pending.pop(key)
                try:
                    if data is None:
                        await self.store.delete(*key)
                    else:
                        await self.store.save(*key, data)
                        self.saves += 1
                except Exception:
                    log.exception(
                        "auth_data write failed; retrying", extra={"fields": {"session": str(key[1])}}
                    )
                    self._pending.setdefault(key, data)
                    await asyncio.sleep(self.RETRY_AFTER)
            self._idle.set()

    async def close(self, timeout: float) -> None:
        try:
            await self.flush(timeout)
        except TimeoutError:
            log.error("auth_data not all saved at shutdown", extra={"fields": {"left": len(self._pending)}})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
