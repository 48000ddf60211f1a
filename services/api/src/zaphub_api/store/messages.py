"""Messages and their status history in PostgreSQL, including the outbox of unpublished sends."""

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from zaphub_api.domain_errors import (
    Conflict,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    MessageNotFound,
    NotFound,
    SendQueueFull,
    SessionNotFound,
)
from zaphub_contracts.failures import FailureReason
from zaphub_contracts.statuses import MessageStatus

MESSAGE_COLUMNS = (
    "id, tenant_id, session_id, direction, seq, chat, sender, type, content, status, whatsapp_id,"
    " failure_reason, failure_detail, created_at, updated_at, sender_lid, push_name, participant,"
    " participant_lid, imported, edited_at, revoked_at"
)


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An outbound message to accept, one of a batch for `accept_many`."""

    tenant_id: UUID
    session_id: UUID
    chat: str
    content: dict[str, Any]
    idempotency_key: str | None = None


TRANSIENT_RETRIES = 3
QUEUE_RETRY_AFTER = 60  # seconds a tenant whose queue is full is told to wait
QUEUE_RECOUNT = 1.0  # seconds between counts of a tenant's waiting sends
ROOM_CACHE_MAX = 10_000  # tenants whose room is remembered before expired entries are dropped

# Each tenant's `max_queued` (its per-day limit when unset) and how many of its sends wait to be handed
# to WhatsApp, counted on the partial index `messages_waiting` and never past the cap.
QUEUE_ROOM = """
SELECT t.id, q.cap, (
    SELECT count(*) FROM (
        SELECT 1 FROM messages m
        WHERE m.tenant_id = t.id AND m.direction = 'outbound' AND m.status IN ('queued', 'rate_limited')
        LIMIT q.cap
    ) w
) AS waiting
FROM tenants t CROSS JOIN LATERAL (SELECT coalesce(t.max_queued, t.rate_per_day, $2)::int AS cap) q
WHERE t.id = ANY($1::uuid[])
"""

# Many messages in one statement: each session's counter moves by its count in the batch (its rows
# locked in id order, so concurrent batches cannot deadlock), and its messages take the seqs in
# their order of arrival. NO KEY UPDATE, since only msg_seq changes: it leaves the key-share locks
# that rows referencing the session take (the projector's chat upserts) free to proceed, where
# FOR UPDATE deadlocked with a projector batch holding one session's and waiting on another's.
ACCEPT_MANY = """
WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::text[])
        WITH ORDINALITY AS t(id, tenant_id, session_id, chat, type, content, idempotency_key, ord)
), wanted AS (
    SELECT session_id, tenant_id, count(*) AS n FROM input GROUP BY session_id, tenant_id
), locked AS (
    SELECT s.id FROM sessions s JOIN wanted w ON s.id = w.session_id AND s.tenant_id = w.tenant_id
    ORDER BY s.id FOR NO KEY UPDATE OF s
), counted AS (
    UPDATE sessions SET msg_seq = sessions.msg_seq + w.n
    FROM wanted w JOIN locked l ON l.id = w.session_id
    WHERE sessions.id = w.session_id
    RETURNING sessions.id, sessions.msg_seq - w.n AS base
), m AS (
    INSERT INTO messages (id, tenant_id, session_id, direction, seq, chat, type, content, status,
                          idempotency_key)
    SELECT i.id, i.tenant_id, i.session_id, 'outbound',
           c.base + row_number() OVER (PARTITION BY i.session_id ORDER BY i.ord),
           i.chat, i.type, i.content, 'queued', i.idempotency_key
    FROM input i JOIN counted c ON c.id = i.session_id
    RETURNING id, seq, created_at
), h AS (
    INSERT INTO message_history (message_id, status, at) SELECT id, 'queued', created_at FROM m
)
SELECT id, seq, created_at FROM m
"""


@dataclass(frozen=True, slots=True)
class Accepted:
    """A stored outbound message, as the send command and the 202 answer need it."""

    id: UUID
    session_id: UUID
    seq: int
    chat: str
    content: dict[str, Any]
    status: MessageStatus
    created_at: datetime
    replayed: bool  # an Idempotency-Key repeat: nothing new was stored


class MessageStore:
    def __init__(self, pool: asyncpg.Pool, default_max_queued: int = 100_000) -> None:
        self._pool = pool
        self._default_max_queued = default_max_queued  # the deployment's per-day limit
        self._room: dict[UUID, tuple[float, int, int]] = {}  # tenant → (recount at, cap, room left)

    async def accept_one(self, m: NewMessage) -> Accepted:
        """Store one outbound message as queued, with the next per-session sequence number (the batch
        statement with a batch of one). A repeated Idempotency-Key returns the first message instead."""
        if m.idempotency_key is not None:
            first = await self._first(m.tenant_id, m.idempotency_key)
            if first is not None:
                return self._replay(first, m.session_id, m.chat, m.content)
        message_id = uuid4()
        try:
            rows = await self._store_many([(0, m, message_id)])
        except asyncpg.UniqueViolationError:
            # A concurrent request with the same key committed first: answer with its message.
            first = await self._first(m.tenant_id, m.idempotency_key or "")
            if first is None:
                raise IdempotencyKeyInFlight() from None
            return self._replay(first, m.session_id, m.chat, m.content)
        if not rows:
            raise SessionNotFound(m.session_id)
        return _accepted(m, message_id, rows[0])

    async def accept_many(self, batch: list[NewMessage]) -> list[Accepted | Exception]:
        """Store a batch of outbound messages in one statement; each gets its own result or error.

        A repeated Idempotency-Key answers with the first message. Should the statement fail on a key
        (a repeat inside the batch, or a concurrent request), the batch is accepted one by one, which
        sorts out each message on its own.
        """
        out: list[Accepted | Exception | None] = [None] * len(batch)
        keyed = [(i, m) for i, m in enumerate(batch) if m.idempotency_key is not None]
        if keyed:
            firsts = await self._pool.fetch(
                "SELECT id, tenant_id, idempotency_key, session_id, seq, chat, content, status, created_at"
                " FROM messages WHERE (tenant_id, idempotency_key) IN"
                " (SELECT * FROM unnest($1::uuid[], $2::text[]))",
                [m.tenant_id for _, m in keyed],
                [m.idempotency_key for _, m in keyed],
            )
            by_key = {(r["tenant_id"], r["idempotency_key"]): r for r in firsts}
            for i, m in keyed:
                first = by_key.get((m.tenant_id, m.idempotency_key))
                if first is not None:
                    try:
                        out[i] = self._replay(first, m.session_id, m.chat, m.content)
                    except Conflict as exc:
                        out[i] = exc
        for i, refused in await self._over_queue([(i, m) for i, m in enumerate(batch) if out[i] is None]):
            out[i] = refused
        fresh = [(i, m, uuid4()) for i, m in enumerate(batch) if out[i] is None]
        if fresh:
            try:
                rows = await self._store_many(fresh)
            except asyncpg.UniqueViolationError:
                for i, m, _ in fresh:
                    try:
                        out[i] = await self.accept_one(m)
                    except (Conflict, NotFound) as exc:
                        out[i] = exc
                return [r for r in out if r is not None]
            stored = {r["id"]: r for r in rows}
            for i, m, message_id in fresh:
                row = stored.get(message_id)
                out[i] = SessionNotFound(m.session_id) if row is None else _accepted(m, message_id, row)
        return [r for r in out if r is not None]

    async def _over_queue(self, wanted: list[tuple[int, NewMessage]]) -> list[tuple[int, SendQueueFull]]:
        """The messages of `wanted` beyond their tenant's `max_queued`, each with its refusal.

        A tenant's waiting sends are counted at most once per `QUEUE_RECOUNT` seconds (one query for
        every tenant of the batch due), and what this process admits meanwhile is subtracted from the
        room it found: the hot path mostly costs no query. Other replicas' admissions and sends that
        went out are seen at the next count, so the cap holds to within a second of accepts."""
        if not wanted:
            return []
        now = time.monotonic()
        due = list({m.tenant_id for _, m in wanted if self._room.get(m.tenant_id, (0.0,))[0] <= now})
        if due:
            rows = await self._pool.fetch(QUEUE_ROOM, due, self._default_max_queued)
            if len(self._room) > ROOM_CACHE_MAX:
                self._room = {t: r for t, r in self._room.items() if r[0] > now}
            for r in rows:
                self._room[r["id"]] = (now + QUEUE_RECOUNT, r["cap"], r["cap"] - r["waiting"])
        refused = []
        for i, m in wanted:
            room = self._room.get(m.tenant_id)
            if room is None:
                continue  # an unknown tenant: the insert reports it
            until, cap, left = room
            if left <= 0:
                refused.append((i, SendQueueFull(cap, QUEUE_RETRY_AFTER)))
            else:
                self._room[m.tenant_id] = (until, cap, left - 1)
        return refused

    async def _store_many(self, fresh: list[tuple[int, NewMessage, UUID]]) -> list[asyncpg.Record]:
        args = (
            [message_id for _, _, message_id in fresh],
            [m.tenant_id for _, m, _ in fresh],
            [m.session_id for _, m, _ in fresh],
            [m.chat for _, m, _ in fresh],
            [m.content["type"] for _, m, _ in fresh],
            [json.dumps(m.content) for _, m, _ in fresh],
            [m.idempotency_key for _, m, _ in fresh],
        )
        attempt = 1
        while True:
            try:
                return list(await self._pool.fetch(ACCEPT_MANY, *args))
            except asyncpg.TransactionRollbackError:
                # A deadlock or serialization failure rolled the whole statement back: nothing was
                # stored, so the batch can go again.
                if attempt == TRANSIENT_RETRIES:
                    raise
                attempt += 1

    async def _first(self, tenant_id: UUID, idempotency_key: str) -> asyncpg.Record | None:
        return await self._pool.fetchrow(
            "SELECT id, session_id, seq, chat, content, status, created_at FROM messages"
            " WHERE tenant_id = $1 AND idempotency_key = $2",
            tenant_id,
            idempotency_key,
        )

    @staticmethod
    def _replay(first: asyncpg.Record, session_id: UUID, chat: str, content: dict[str, Any]) -> Accepted:
        stored = json.loads(first["content"])
        if first["session_id"] != session_id or first["chat"] != chat or stored != content:
            raise IdempotencyKeyReused()
        return Accepted(
            first["id"],
            first["session_id"],
            first["seq"],
            first["chat"],
            stored,
            MessageStatus(first["status"]),
            first["created_at"],
            True,
        )

    async def mark_published(self, message_ids: list[UUID]) -> None:
        await self._pool.execute(
            "UPDATE messages SET published_at = now() WHERE id = ANY($1::uuid[]) AND published_at IS NULL",
            message_ids,
        )

    async def fail_unpublishable(self, message_ids: list[UUID], detail: str) -> None:
        """Fail messages whose send command cannot be built, so that the outbox stops retrying them."""
        async with self._pool.acquire() as conn, conn.transaction():
            failed = await conn.fetch(
                "UPDATE messages SET status = 'failed', failure_reason = $2, failure_detail = $3,"
                " published_at = now(), updated_at = now()"
                " WHERE id = ANY($1::uuid[]) AND published_at IS NULL RETURNING id",
                message_ids,
                FailureReason.INVALID_PAYLOAD.value,
                detail,
            )
            await conn.execute(
                "INSERT INTO message_history (message_id, status, at, detail)"
                " SELECT unnest($1::uuid[]), 'failed', now(), $2::jsonb",
                [r["id"] for r in failed],
                json.dumps({"reason": FailureReason.INVALID_PAYLOAD.value, "detail": detail}),
            )

    async def unpublished(self, older_than: datetime, limit: int) -> list[asyncpg.Record]:
        return list(
            await self._pool.fetch(
                "SELECT m.id, m.tenant_id, m.session_id, m.seq, m.chat, m.content, m.created_at"
                " FROM messages m WHERE m.published_at IS NULL AND m.direction = 'outbound'"
                " AND m.created_at < $1 ORDER BY m.created_at LIMIT $2",
                older_than,
                limit,
            )
        )

    async def get(self, tenant_id: UUID, message_id: UUID) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
        """The tenant's message and its status history, oldest first."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1 AND tenant_id = $2",
                message_id,
                tenant_id,
            )
            if row is None:
                raise MessageNotFound(message_id)
            history = await conn.fetch(
                "SELECT status, at, detail FROM message_history WHERE message_id = $1 ORDER BY at, id",
                message_id,
            )
        return row, list(history)

    async def media_of(self, tenant_id: UUID, message_id: UUID) -> asyncpg.Record:
        """The session, type and media state of the tenant's message."""
        row = await self._pool.fetchrow(
            "SELECT session_id, type, media, media_stored_at,"
            " direction = 'outbound' AND content->>'url' IS NOT NULL AS sent_by_url"
            " FROM messages WHERE id = $1 AND tenant_id = $2",
            message_id,
            tenant_id,
        )
        if row is None:
            raise MessageNotFound(message_id)
        return row

    async def list_for_session(
        self,
        tenant_id: UUID,
        session_id: UUID,
        limit: int,
        offset: int,
        direction: str | None = None,
        status: MessageStatus | None = None,
        since: datetime | None = None,
    ) -> list[asyncpg.Record]:
        rows = await self._pool.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND session_id = $2"
            " AND ($5::text IS NULL OR direction = $5) AND ($6::text IS NULL OR status = $6)"
            " AND ($7::timestamptz IS NULL OR created_at >= $7)"
            " ORDER BY created_at DESC, id LIMIT $3 OFFSET $4",
            tenant_id,
            session_id,
            limit,
            offset,
            direction,
            status.value if status else None,
            since,
        )
        return list(rows)


def _accepted(m: NewMessage, message_id: UUID, row: asyncpg.Record) -> Accepted:
    status, created_at = MessageStatus.QUEUED, row["created_at"]
    return Accepted(message_id, m.session_id, row["seq"], m.chat, m.content, status, created_at, False)
