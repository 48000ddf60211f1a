"""Webhooks in PostgreSQL, mirrored to the `zaphub_webhooks` bucket for the dispatcher (secrets
sealed with the key ring), and their delivery log as projected from the dispatcher's attempt records.

Every write of a webhook holds the reconcile lock shared and the reconcile holds it exclusively, so
the reconcile never sees a webhook half written (mirrored, not yet committed) and drops it."""

import secrets
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from nats.js.errors import NoKeysError
from nats.js.kv import KeyValue

from zaphub_api.domain_errors import DeliveryNotFound, WebhookLimitReached, WebhookNotFound
from zaphub_contracts.webhooks import AttemptStatus, WebhookAttempt, WebhookConfig, secret_aad, webhook_key
from zaphub_runtime.keyring import KeyRing

WEBHOOK_COLUMNS = "id, tenant_id, url, events, secret, description, active, created_at, updated_at"
DELIVERY_COLUMNS = (
    "id, webhook_id, tenant_id, session_id, event_id, event_type, event_seq, status, attempts,"
    " last_response_code, last_error, last_attempt_at, next_attempt_at, created_at"
)
PENDING = "pending"
# pg advisory lock keys (arbitrary, fixed): the reconcile's, and the space of the per-tenant create lock.
RECONCILE_LOCK = 0x5A48_0001
CREATE_LOCK_SPACE = 0x5A48


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookStore:
    def __init__(self, pool: asyncpg.Pool, bucket: KeyValue, ring: KeyRing, max_per_tenant: int = 10) -> None:
        self._pool = pool
        self._bucket = bucket
        self._ring = ring
        self._max_per_tenant = max_per_tenant

    def _config(self, row: asyncpg.Record) -> WebhookConfig:
        sealed = self._ring.encrypt_text(row["secret"], secret_aad(row["tenant_id"], row["id"]))
        return WebhookConfig(
            id=row["id"],
            tenant_id=row["tenant_id"],
            url=row["url"],
            events=tuple(row["events"]),
            sealed_secret=sealed,
            active=row["active"],
        )

    async def _mirror(self, row: asyncpg.Record) -> None:
        config = self._config(row)
        # No `secret` at all: a dispatcher from before sealed secrets then finds the entry unreadable and
        # keeps it out, rather than signing with an empty secret.
        value = config.model_dump_json(exclude={"secret"}).encode()
        await self._bucket.put(webhook_key(config.tenant_id, config.id), value)

    async def create(
        self,
        tenant_id: UUID,
        url: str,
        events: list[str],
        secret: str | None,
        description: str | None,
        active: bool,
    ) -> asyncpg.Record:
        # The bucket is written inside the transaction: a failed mirror leaves no row behind.
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", RECONCILE_LOCK)
            # Concurrent creates of one tenant count one after the other: the cap holds.
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", CREATE_LOCK_SPACE, str(tenant_id)
            )
            count = await conn.fetchval("SELECT count(*) FROM webhooks WHERE tenant_id = $1", tenant_id)
            if count >= self._max_per_tenant:
                raise WebhookLimitReached(self._max_per_tenant)
            row = await conn.fetchrow(
                "INSERT INTO webhooks (id, tenant_id, url, events, secret, description, active)"
                f" VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}",
                uuid4(),
                tenant_id,
                url,
                events,
                secret or new_secret(),
                description,
                active,
            )
            assert row is not None
            await self._mirror(row)
        return row

    async def for_tenant(self, tenant_id: UUID, limit: int, offset: int) -> list[asyncpg.Record]:
        return list(
            await self._pool.fetch(
                f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1"
                " ORDER BY created_at, id LIMIT $2 OFFSET $3",
                tenant_id,
                limit,
                offset,
            )
        )

    async def get(self, tenant_id: UUID, webhook_id: UUID) -> asyncpg.Record:
        """The tenant's webhook; another tenant's id is indistinguishable from a missing one."""
        row = await self._pool.fetchrow(
            f"SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE id = $1 AND tenant_id = $2", webhook_id, tenant_id
        )
        if row is None:
            raise WebhookNotFound(webhook_id)
        return row

    async def update(self, tenant_id: UUID, webhook_id: UUID, changes: dict[str, Any]) -> asyncpg.Record:
        if not changes:
            return await self.get(tenant_id, webhook_id)
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=3))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", RECONCILE_LOCK)
            row = await conn.fetchrow(
                f"UPDATE webhooks SET {sets}, updated_at = now() WHERE id = $1 AND tenant_id = $2"
                f" RETURNING {WEBHOOK_COLUMNS}",
                webhook_id,
                tenant_id,
                *changes.values(),
            )
            if row is None:
                raise WebhookNotFound(webhook_id)
            await self._mirror(row)
        return row

    async def delete(self, tenant_id: UUID, webhook_id: UUID) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", RECONCILE_LOCK)
            deleted = await conn.fetchval(
                "DELETE FROM webhooks WHERE id = $1 AND tenant_id = $2 RETURNING id", webhook_id, tenant_id
            )
            if deleted is None:
                raise WebhookNotFound(webhook_id)
            await self._bucket.delete(webhook_key(tenant_id, webhook_id))

    async def reconcile(self) -> None:
        """Make the bucket match Postgres (after a crash between the two, or a tenant's deletion). Under
        the reconcile lock no webhook write is in flight, and the rows are read after the keys were
        listed: a key with no row is one whose webhook is gone, never one being created."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", RECONCILE_LOCK)
            try:
                present = set(await self._bucket.keys())
            except NoKeysError:
                present = set()
            rows = await conn.fetch(f"SELECT {WEBHOOK_COLUMNS} FROM webhooks")
            wanted = {webhook_key(r["tenant_id"], r["id"]): r for r in rows}
            for key in present - set(wanted):
                await self._bucket.delete(key)
            for row in wanted.values():
                await self._mirror(row)

    async def forget_tenant(self, tenant_id: UUID) -> None:
        """Remove a deleted tenant's webhooks from the bucket (its rows went with the tenant's)."""
        try:
            keys = await self._bucket.keys()
        except NoKeysError:
            return
        for key in keys:
            if key.startswith(f"{tenant_id}."):
                await self._bucket.delete(key)

    async def deliveries(
        self, tenant_id: UUID, webhook_id: UUID, status: str | None, limit: int, offset: int
    ) -> list[tuple[asyncpg.Record, list[asyncpg.Record]]]:
        await self.get(tenant_id, webhook_id)
        rows = await self._pool.fetch(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 AND tenant_id = $2"
            " AND ($3::text IS NULL OR status = $3) ORDER BY created_at DESC, id LIMIT $4 OFFSET $5",
            webhook_id,
            tenant_id,
            status,
            limit,
            offset,
        )
        attempts = await self._pool.fetch(
            "SELECT delivery_id, attempt, status, response_code, error, duration_ms, at"
            " FROM webhook_delivery_attempts WHERE delivery_id = ANY($1::uuid[]) ORDER BY attempt",
            [r["id"] for r in rows],
        )
        by_delivery: dict[UUID, list[asyncpg.Record]] = {}
        for attempt in attempts:
            by_delivery.setdefault(attempt["delivery_id"], []).append(attempt)
        return [(row, by_delivery.get(row["id"], [])) for row in rows]

    async def delivery(self, tenant_id: UUID, webhook_id: UUID, delivery_id: UUID) -> asyncpg.Record:
        row = await self._pool.fetchrow(
            f"SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries"
            " WHERE id = $1 AND webhook_id = $2 AND tenant_id = $3",
            delivery_id,
            webhook_id,
            tenant_id,
        )
        if row is None:
            raise DeliveryNotFound(webhook_id, delivery_id)
        return row

    async def mark_pending(self, delivery_id: UUID) -> None:
        await self._pool.execute(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = now() WHERE id = $1",
            delivery_id,
            PENDING,
        )

    async def record_attempt(self, a: WebhookAttempt) -> None:
        """Idempotent: the attempt row is keyed by (delivery, attempt); the summary only moves forward."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, tenant_id, session_id, event_id, event_type,"
                " event_seq, status, attempts, last_response_code, last_error, last_attempt_at,"
                " next_attempt_at)"
                " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13"
                " WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = $2 AND tenant_id = $3)"
                " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, attempts = EXCLUDED.attempts,"
                " last_response_code = EXCLUDED.last_response_code, last_error = EXCLUDED.last_error,"
                " last_attempt_at = EXCLUDED.last_attempt_at, next_attempt_at = EXCLUDED.next_attempt_at"
                # An attempt repeated after a crash (same number, later) tells the newer outcome.
                " WHERE webhook_deliveries.attempts < EXCLUDED.attempts"
                " OR (webhook_deliveries.attempts = EXCLUDED.attempts"
                " AND webhook_deliveries.last_attempt_at <= EXCLUDED.last_attempt_at)",
                a.delivery_id,
                a.webhook_id,
                a.tenant_id,
                a.session_id,
                a.event_id,
                a.event_type,
                a.event_seq,
                a.status.value,
                a.attempt,
                a.response_code,
                a.error,
                a.at,
                a.next_attempt_at if a.status is AttemptStatus.RETRYING else None,
            )
            await conn.execute(
                "INSERT INTO webhook_delivery_attempts (delivery_id, attempt, status, response_code, error,"
                " duration_ms, at) SELECT $1, $2, $3, $4, $5, $6, $7"
                " WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = $1)"
                " ON CONFLICT (delivery_id, attempt) DO UPDATE SET status = EXCLUDED.status,"
                " response_code = EXCLUDED.response_code, error = EXCLUDED.error,"
                " duration_ms = EXCLUDED.duration_ms, at = EXCLUDED.at"
                " WHERE webhook_delivery_attempts.at <= EXCLUDED.at",
                a.delivery_id,
                a.attempt,
                a.status.value,
                a.response_code,
                a.error,
                a.duration_ms,
                a.at,
            )
