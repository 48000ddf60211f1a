"""Brings this host's sessions in line with the desired state, every `reconcile_interval`.

Each pass: refresh our leases (a lease we cannot refresh, or see held by another host, stops its
session at once); stop sessions whose desired key is gone; heartbeat; claim desired sessions that
nobody leases, while we have room. The least-loaded host claims first: a host waits
`claim_stagger` seconds per live host with room that is less loaded than itself, so new sessions
land on the emptiest host and the others only step in when it does not.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar
from uuid import UUID

from zaphub_contracts.sessions import DesiredSession, Lease
from zaphub_runtime.kv_watch import KvMirror
from zaphub_session_host.leases import Leases, RefreshOutcome
from zaphub_session_host.registry import Registry
from zaphub_session_host.sessions import Sessions
from zaphub_session_host.settings import HostSettings

log = logging.getLogger(__name__)

CHUNK = 64  # concurrent KV round trips per step
T = TypeVar("T")


async def _chunked(items: Iterable[T], fn: Callable[[T], Awaitable[object]]) -> None:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == CHUNK:
            await asyncio.gather(*(fn(i) for i in batch))
            batch = []
    if batch:
        await asyncio.gather(*(fn(i) for i in batch))


class Reconciler:
    def __init__(
        self,
        settings: HostSettings,
        host_id: str,
        sessions: Sessions,
        leases: Leases,
        registry: Registry,
        desired: KvMirror[DesiredSession],
        leased: KvMirror[Lease],
    ) -> None:
        self.settings = settings
        self.host_id = host_id
        self.sessions = sessions
        self.leases = leases
        self.registry = registry
        self.desired = desired
        self.leased = leased
        self.draining = False
        self._first_seen: dict[UUID, float] = {}
        self._hold_off: dict[UUID, float] = {}  # stopped by request: leave it to another host for a while
        self._last_refresh = 0.0
        self._last_heartbeat = 0.0
        self._last_load = 0
        self._last_save = time.monotonic()
        self._waiting = 0  # desired sessions nobody holds while we are full, as last logged

    async def run(self, stop: asyncio.Event) -> None:
        """Pass after pass until `stop` is set; a pass in progress is finished, never cancelled halfway
        (nats-py swallows cancellation in places, and a half-done stop would leak a subscription)."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:
                log.exception("reconcile pass failed")
            pause = max(0.0, self.settings.reconcile_interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)

    async def tick(self) -> None:
        now = time.monotonic()
        period = self.settings.lease_ttl / 3
        await self._drop_leases_held_elsewhere()
        if now - self._last_refresh >= period:
            self._last_refresh = now
            await self.refresh_leases()
        await self._stop_undesired()
        # Beat on schedule, and soon after our load changed so peers rank hosts by current load.
        if now - self._last_heartbeat >= period or len(self.sessions) != self._last_load:
            self._last_heartbeat = now
            await self.heartbeat()
        if now - self._last_save >= self.settings.auth_save_interval:
            self._last_save = now
            self.sessions.save_auth()
        if not self.draining:
            await self._claim(now)

    async def heartbeat(self) -> None:
        self._last_load = len(self.sessions)
        try:
            await self.registry.heartbeat(self._last_load)
        except Exception as exc:
            log.warning("heartbeat failed", extra={"fields": {"error": repr(exc)}})

    async def refresh_leases(self) -> None:
        async def refresh(session_id: UUID) -> None:
            if await self.leases.refresh(session_id) == RefreshOutcome.LOST:
                await self._lost(session_id)

        await _chunked(list(self.leases.held), refresh)

    async def _lost(self, session_id: UUID) -> None:
        log.warning("lease lost; session stopped here", extra={"fields": {"session_id": str(session_id)}})
        self.leases.forget(session_id)
        await self.sessions.stop(session_id, "lease lost", lost=True)

    async def _drop_leases_held_elsewhere(self) -> None:
        for session_id in list(self.sessions.runners):
            entry = self.leased.entries.get(str(session_id))
            if entry is not None and entry[0].host_id != self.host_id:
                await self._lost(session_id)

    def _wanted(self) -> dict[UUID, DesiredSession]:
        return {d.session_id: d for d, _ in self.desired.entries.values()}

    async def _stop_undesired(self) -> None:
        wanted = self._wanted()
        gone = [sid for sid in self.sessions.runners if sid not in wanted]

        async def stop(session_id: UUID) -> None:
            await self.stop_session(session_id, "session removed")

        await _chunked(gone, stop)

    async def stop_session(self, session_id: UUID, reason: str, *, handover: bool = False) -> None:
        """Stop a session here and give its lease up at once."""
        await self.sessions.stop(session_id, reason, handover=handover)
        await self.sessions.ctx.auth.flush()  # the next owner must load what we saved
        await self.leases.release(session_id)

    async def stop_by_request(self, session_id: UUID, reason: str, handover: bool) -> None:
        self._hold_off[session_id] = time.monotonic() + self.settings.lease_ttl
        await self.stop_session(session_id, reason, handover=handover)

    async def _claim(self, now: float) -> None:
        wanted = self._wanted()
        leased = self.leased.entries
        free = [
            d
            for sid, d in wanted.items()
            if sid not in self.sessions and str(sid) not in leased and self._hold_off.get(sid, 0.0) <= now
        ]
        free_ids = {d.session_id for d in free}
        for sid in [s for s in self._first_seen if s not in free_ids]:
            del self._first_seen[sid]
        for sid in [s for s, until in self._hold_off.items() if until <= now]:
            del self._hold_off[sid]
        free.sort(key=lambda d: d.requested_at)
        self._log_waiting(len(free) if len(self.sessions) >= self.settings.max_concurrent_sessions else 0)
        for i in range(0, len(free), CHUNK):
            held = len(self.sessions)
            batch: list[DesiredSession] = []
            for d in free[i : i + CHUNK]:
                if held + len(batch) >= self.settings.max_concurrent_sessions:
                    break
                # Ranked with the load we will have, so a burst of new sessions spreads over hosts.
                delay = self.registry.claim_rank(held + len(batch)) * self.settings.claim_stagger
                if now - self._first_seen.setdefault(d.session_id, now) >= delay:
                    batch.append(d)
            if not batch:
                continue
            await asyncio.gather(*(self._claim_one(d) for d in batch))

    def _log_waiting(self, waiting: int) -> None:
        """Say when sessions start waiting for capacity here; they stay `queued` until some host has room."""
        if waiting and waiting != self._waiting:
            log.warning(
                "host full; sessions wait for capacity",
                extra={"fields": {"waiting": waiting, "capacity": self.settings.max_concurrent_sessions}},
            )
        self._waiting = waiting

    async def _claim_one(self, desired: DesiredSession) -> None:
        try:
            if not await self.leases.claim(desired.tenant_id, desired.session_id):
                return
        except Exception as exc:
            log.warning(
                "claim failed", extra={"fields": {"session": str(desired.session_id), "error": repr(exc)}}
            )
            return
        self._first_seen.pop(desired.session_id, None)
        try:
            await self.sessions.start(desired.tenant_id, desired.session_id)
        except Exception:
            log.exception("session start failed", extra={"fields": {"session_id": str(desired.session_id)}})
            await self.leases.release(desired.session_id)
            return
        log.info("session claimed", extra={"fields": {"session_id": str(desired.session_id)}})

    async def drain(self) -> None:
        """Stop everything here, save auth_data, then release every lease so other hosts take over at once."""
        self.draining = True
        self.registry.draining = True
        await self.heartbeat()

        async def stop(session_id: UUID) -> None:
            await self.sessions.stop(session_id, "host draining", handover=True)

        await _chunked(list(self.sessions.runners), stop)
        await self.sessions.ctx.auth.flush()
        await _chunked(list(self.leases.held), self.leases.release)
