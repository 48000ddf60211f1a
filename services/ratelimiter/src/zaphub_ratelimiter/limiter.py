"""Decisions for every tenant: the in-memory window of each tenant kept in step with its grant log.

Requests for one tenant are queued and decided in batches by one task (group commit): each batch is
decided against the window at one instant and written as one record with compare-and-set. If another
replica wrote first, the batch is undone, the window catches up from the log and the batch is decided
again. A batch that writes nothing (denials, repeated grants, usage) is answered only after a read of the
log's last sequence shows the window was current, so a denial's `retry_after` is exact too.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from zaphub_contracts.ratelimit import (
    AcquireReply,
    GrantLogRecord,
    ReleaseReply,
    UsageReply,
    WindowName,
    WindowUsage,
)
from zaphub_ratelimiter.grant_log import Conflict, Entry, GrantLog
from zaphub_ratelimiter.limits import LONGEST_WINDOW_NS, NS, TenantLimits
from zaphub_ratelimiter.metrics import CONFLICTS, DECISIONS, DENIALS, RELEASES, TENANTS
from zaphub_ratelimiter.windows import GrantWindow, WindowLimit

log = logging.getLogger(__name__)

# Records are stamped with the writer's clock but filtered on load by the server's; this margin covers
# any skew between the two, so a cold start never misses a grant that still counts.
LOAD_MARGIN_NS = 600 * NS

OpKind = Literal["acquire", "release", "usage"]
Reply = AcquireReply | ReleaseReply | UsageReply


@dataclass(slots=True)
class _Op:
    kind: OpKind
    tokens: list[UUID]
    future: asyncio.Future[Reply]


@dataclass(slots=True)
class _Tenant:
    id: UUID
    window: GrantWindow = field(default_factory=GrantWindow)
    seq: int = 0  # last log sequence applied to `window`
    loaded: bool = False
    pending: list[_Op] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    touched: float = 0.0


class Limiter:
    def __init__(
        self,
        grant_log: GrantLog,
        limits: TenantLimits,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._log = grant_log
        self._limits = limits
        self._clock_ns = clock_ns
        self._tenants: dict[UUID, _Tenant] = {}
        self.granted = 0
        self.denied = 0
        self.conflicts = 0

    async def acquire(self, tenant: UUID, tokens: list[UUID]) -> AcquireReply:
        """Grant `tokens` in order, up to the first that a window denies."""
        reply = await self._submit(tenant, "acquire", tokens)
        assert isinstance(reply, AcquireReply)
        return reply

    async def release(self, tenant: UUID, tokens: list[UUID]) -> ReleaseReply:
        reply = await self._submit(tenant, "release", tokens)
        assert isinstance(reply, ReleaseReply)
        return reply

    async def usage(self, tenant: UUID) -> UsageReply:
        reply = await self._submit(tenant, "usage", [])
        assert isinstance(reply, UsageReply)
        return reply

    def forget_idle(self, idle_seconds: float) -> int:
        """Drop the windows of tenants untouched for a while; they reload from the log when needed."""
        cutoff = time.monotonic() - idle_seconds
        idle = [t.id for t in self._tenants.values() if t.touched < cutoff and t.worker is None]
        for tenant in idle:
            del self._tenants[tenant]
        TENANTS.set(len(self._tenants))
        return len(idle)

    async def _submit(self, tenant_id: UUID, kind: OpKind, tokens: list[UUID]) -> Reply:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Tenant(id=tenant_id)
            TENANTS.set(len(self._tenants))
        tenant.touched = time.monotonic()
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        tenant.pending.append(_Op(kind, tokens, future))
        if tenant.worker is None:
            tenant.worker = asyncio.create_task(self._drain(tenant), name=f"ratelimit-{tenant_id}")
        # The worker owns the batch: a caller that gives up must not cancel it for the others.
        return await asyncio.shield(future)

    async def _drain(self, tenant: _Tenant) -> None:
        try:
            while tenant.pending:
                batch, tenant.pending = tenant.pending, []
                try:
                    await self._decide_batch(tenant, batch)
                except Exception as exc:
                    for op in batch:
                        if not op.future.done():
                            op.future.set_exception(exc)
        finally:
            tenant.worker = None

    async def _decide_batch(self, tenant: _Tenant, batch: list[_Op]) -> None:
        if not tenant.loaded:
            await self._load(tenant)
        while True:
            now = max(self._clock_ns(), tenant.window.latest)
            tenant.window.prune(now, LONGEST_WINDOW_NS)
            limits = self._limits.get(tenant.id)
            replies: list[Reply] = []
            grants: list[UUID] = []
            releases: list[tuple[UUID, int]] = []
            for op in batch:
                if op.kind == "acquire":
                    replies.append(self._acquire(tenant, now, limits, op.tokens, grants))
                elif op.kind == "release":
                    released = 0
                    for token in op.tokens:
                        at = tenant.window.release(token)
                        if at is not None:
                            releases.append((token, at))
                            released += 1
                    replies.append(ReleaseReply(released=released))
                else:
                    replies.append(self._usage_reply(tenant, now, limits))

            if grants or releases:
                record = GrantLogRecord(at_ns=now, grants=grants, releases=[t for t, _ in releases])
                try:
                    tenant.seq = await self._log.append(tenant.id, record, tenant.seq)
                except Conflict as conflict:
                    self.conflicts += 1
                    CONFLICTS.inc()
                    self._undo(tenant, grants, releases)
                    await self._catch_up(tenant, conflict.last_seq)
                    continue
                except BaseException:
                    # The record may or may not have landed; the next append's compare-and-set tells.
                    self._undo(tenant, grants, releases)
                    raise
            else:
                last = await self._log.last_seq(tenant.id)
                if last != tenant.seq:
                    await self._catch_up(tenant, last)
                    continue
            self.granted += len(grants)
            if grants:
                DECISIONS.labels("granted", "").inc(len(grants))
            if releases:
                RELEASES.inc(len(releases))
            for op, reply in zip(batch, replies, strict=True):
                if isinstance(reply, AcquireReply) and reply.granted < len(op.tokens):
                    self.denied += 1
                    DECISIONS.labels("denied", reply.window or "").inc()
                    DENIALS.labels(str(tenant.id), reply.window or "").inc()
                if not op.future.done():
                    op.future.set_result(reply)
            return

    @staticmethod
    def _acquire(
        tenant: _Tenant,
        now: int,
        limits: Sequence[WindowLimit[WindowName]],
        tokens: list[UUID],
        grants: list[UUID],
    ) -> AcquireReply:
        """Grant a prefix of `tokens` (appended to `grants`); the first denial ends it, so a later
        message of a session never gets capacity an earlier one was refused."""
        for granted, token in enumerate(tokens):
            if tenant.window.is_live(token):
                continue  # granted before: a repeated request after a crash
            decision = tenant.window.decide(now, limits)
            if not decision.granted:
                return AcquireReply(
                    granted=granted, retry_after=decision.retry_after / NS, window=decision.window
                )
            tenant.window.grant(token, now)
            grants.append(token)
        return AcquireReply(granted=len(tokens))

    @staticmethod
    def _usage_reply(tenant: _Tenant, now: int, limits: Sequence[WindowLimit[WindowName]]) -> UsageReply:
        windows = [
            WindowUsage(
                window=u.window,
                used=u.used,
                limit=u.limit,
                resets_at=None if u.resets_at is None else datetime.fromtimestamp(u.resets_at / NS, UTC),
            )
            for u in tenant.window.usage(now, limits)
        ]
        return UsageReply(tenant_id=tenant.id, windows=windows)

    @staticmethod
    def _undo(tenant: _Tenant, grants: list[UUID], releases: list[tuple[UUID, int]]) -> None:
        for token in grants:
            tenant.window.release(token)
        for token, at in releases:
            tenant.window.grant(token, at)

    async def _load(self, tenant: _Tenant) -> None:
        """Cold start: the tenant's records of the longest window (plus a margin), from the log."""
        tenant.window = GrantWindow()
        tenant.seq = 0
        last = await self._log.last_seq(tenant.id)
        if last:
            since_ns = self._clock_ns() - LONGEST_WINDOW_NS - LOAD_MARGIN_NS
            since = datetime.fromtimestamp(since_ns / NS, UTC)
            self._apply(tenant, await self._log.read(tenant.id, since=since))
            # Normally a no-op; reads the rest when a lagging replica answered the first read short.
            await self._catch_up(tenant, last)
        tenant.loaded = True

    async def _catch_up(self, tenant: _Tenant, last_seq: int) -> None:
        """Apply the records other replicas appended, up to at least `last_seq`."""
        if last_seq < tenant.seq:
            # Records we applied are gone (expired or purged): start over from what the log holds.
            log.info("tenant log went back; reloading", extra={"fields": {"tenant_id": str(tenant.id)}})
            tenant.loaded = False
            await self._load(tenant)
            return
        while tenant.seq < last_seq:
            entries = await self._log.read(tenant.id, after_seq=tenant.seq)
            if not entries:
                # A replica of a clustered stream answered from behind; ask again.
                await asyncio.sleep(0.005)
                continue
            self._apply(tenant, entries)

    @staticmethod
    def _apply(tenant: _Tenant, entries: list[Entry]) -> None:
        for entry in entries:
            if entry.seq <= tenant.seq:
                continue
            for token in entry.record.releases:
                tenant.window.release(token)
            for token in entry.record.grants:
                tenant.window.grant(token, entry.record.at_ns)
            tenant.seq = entry.seq
