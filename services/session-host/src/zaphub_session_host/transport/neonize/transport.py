"""The process-wide part of the neonize transport: the store directory, the media HTTP client (through
the egress policy), the worker threads, and one `NeonizeConnection` opened per session."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

from zaphub_runtime.egress import EgressClient, EgressPolicy
from zaphub_session_host.media_fetch import MAX_MEDIA_BYTES
from zaphub_session_host.transport.base import ConnectionEvents, HistorySync, Transport
from zaphub_session_host.transport.neonize.connection import NeonizeConnection
from zaphub_session_host.transport.neonize.media import missing_media_tools

log = logging.getLogger(__name__)

EXTRA_THREADS = 32


class NeonizeTransport(Transport):
    """Process-wide part: the store directory, the media HTTP client, the worker threads."""

    name = "neonize"

    def __init__(
        self,
        data_dir: Path | None = None,
        max_sessions: int = 1000,
        http: EgressClient | None = None,
        max_media_bytes: int = MAX_MEDIA_BYTES,
        egress: EgressPolicy | None = None,
        history_sync: HistorySync = HistorySync.RECENT,
    ) -> None:
        self._data_dir = data_dir
        self.history_sync = history_sync
        self.max_sessions = max_sessions
        self.max_media_bytes = max_media_bytes
        self._http = http
        self._egress = egress or EgressPolicy()
        self._own_http = http is None
        self.media_tools_missing: list[str] = []

    @property
    def store_root(self) -> Path:
        if self._data_dir is None:
            # app.make_transport builds us without arguments; the data dir then comes from the settings.
            from zaphub_session_host.settings import HostSettings

            self._data_dir = HostSettings().data_dir
        return self._data_dir / "neonize"

    def store_path(self, tenant_id: UUID, session_id: UUID) -> Path:
        return self.store_root / str(tenant_id) / f"{session_id}.sqlite3"

    @property
    def http(self) -> EgressClient:
        if self._http is None:
            self._http = EgressClient(self._egress, user_agent="zaphub-session-host")
        return self._http

    async def start(self) -> None:
        root = self.store_root
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        self.media_tools_missing = missing_media_tools()
        if self.media_tools_missing:
            log.warning(
                "%s not found on PATH: voice notes and non-webp stickers will fail, videos go without "
                "thumbnails; install FFmpeg in the session-host image",
                " and ".join(self.media_tools_missing),
                extra={"fields": {"missing": self.media_tools_missing}},
            )
        # Each live client's Go event loop occupies one to_thread worker for its whole life.
        workers = self.max_sessions + EXTRA_THREADS
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="neonize")
        )

    async def close(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def open(
        self, tenant_id: UUID, session_id: UUID, auth_data: bytes | None, events: ConnectionEvents
    ) -> NeonizeConnection:
        return NeonizeConnection(self, tenant_id, session_id, auth_data, events)
