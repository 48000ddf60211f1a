"""The projector: keeps PostgreSQL current from the events on `ZAPHUB_EVT`.

Every projection is idempotent (history rows are keyed by event id) and monotonic (a message's status
only moves forward; a session's status only takes an event newer than the one it shows), so
redeliveries and replicas consuming in parallel converge on the same rows.
"""

import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, ExitStack
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from nats.aio.msg import Msg
from opentelemetry import trace

from zaphub_api.store import chats
from zaphub_contracts import events as ev
from zaphub_contracts.statuses import MESSAGE_STATUS_RANK, MessageStatus, SessionStatus
from zaphub_runtime.bus import Bus
from zaphub_runtime.consumer import decode_or_dead_letter
from zaphub_runtime.telemetry import consumer_span

log = logging.getLogger(__name__)
tracer = trace.get_tracer("zaphub_api.projector")
Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"
Projection = Callable[[Conn, Any], Awaitable[None]]
Statement = tuple[str, tuple[Any, ...]]
StatusMove = Callable[[Any], Statement | None]

_RANK_SQL = (
    "CASE status "
    + " ".join(f"WHEN '{status.value}' THEN {rank}" for status, rank in MESSAGE_STATUS_RANK.items())
    + " ELSE 0 END"
)


async def _session_status(
    conn: Conn, event: ev.EventBase, status: SessionStatus, reason: str | None, **cols: Any
) -> None:
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(cols, start=6))
    await conn.execute(
        "UPDATE sessions SET status = $3, status_reason = $4, status_at = $5, updated_at = now()"
        + (f", {sets}" if sets else "")
        + " WHERE id = $1 AND tenant_id = $2 AND status_at <= $5",
        event.sessionid,
        event.tenantid,
        status.value,
        reason,
        event.time,
        *cols.values(),
    )


async def _qr(conn: Conn, e: ev.SessionQr) -> None:
    await _session_status(
        conn, e, SessionStatus.QR_PENDING, None, qr=e.data.qr, qr_expires_at=e.data.expires_at
    )


async def _connected(conn: Conn, e: ev.SessionConnected) -> None:
    d = e.data
    await _session_status(
        conn,
        e,
        SessionStatus.CONNECTED,
        None,
        jid=d.jid,
        lid=d.lid,
        push_name=d.push_name,
        host_id=d.host_id,
        qr=None,
    )


async def _disconnected(conn: Conn, e: ev.SessionDisconnected) -> None:
    status = SessionStatus.CONNECTING if e.data.will_reconnect else SessionStatus.DISCONNECTED
    await _session_status(conn, e, status, e.data.reason)


async def _logged_out(conn: Conn, e: ev.SessionLoggedOut) -> None:
    # The device is unlinked: no identity is left, so the session can pair again (pair-code, QR).
    await _session_status(
        conn,
        e,
        SessionStatus.LOGGED_OUT,
        e.data.reason,
        qr=None,
        host_id=None,
        jid=None,
        lid=None,
        push_name=None,
    )


async def _failed_session(conn: Conn, e: ev.SessionFailed) -> None:
    await _session_status(conn, e, SessionStatus.FAILED, f"{e.data.reason}: {e.data.detail}".strip(": "))


async def _history(
    conn: Conn, e: ev.EventBase, message_id: Any, status: MessageStatus, detail: dict[str, Any]
) -> bool:
    """Append to the history once per event; False when the event was projected before."""
    inserted = await conn.fetchval(
        "INSERT INTO message_history (message_id, event_id, status, at, detail)"
        " SELECT id, $2, $3, $4, $5 FROM messages WHERE id = $1 AND tenant_id = $6"
        " ON CONFLICT (event_id) DO NOTHING RETURNING id",
        message_id,
        e.id,
        status.value,
        e.time,
        json.dumps(detail),
        e.tenantid,
    )
    return inserted is not None


def _record(
    e: ev.EventBase,
    message_id: Any,
    status: MessageStatus,
    detail: dict[str, Any],
    whatsapp_id: str | None = None,
    **cols: Any,
) -> Statement:
    """`_history`, then move the message to `status` (and set `cols`) unless it is further along
    already: one statement, which does nothing at all when the event was projected before. The
    WhatsApp id is kept whatever the order: a receipt may be projected before its `message.sent`."""
    moves = f"({_RANK_SQL}) < $7"
    sets = "".join(
        f", {name} = CASE WHEN {moves} THEN ${i} ELSE {name} END" for i, name in enumerate(cols, 9)
    )
    sql = (
        "WITH h AS ("
        " INSERT INTO message_history (message_id, event_id, status, at, detail)"
        " SELECT id, $2, $3, $4, $5 FROM messages WHERE id = $1 AND tenant_id = $6"
        " ON CONFLICT (event_id) DO NOTHING RETURNING message_id)"
        f" UPDATE messages SET status = CASE WHEN {moves} THEN $3 ELSE status END, updated_at = now(),"
        f" whatsapp_id = COALESCE(whatsapp_id, $8){sets}"
        " WHERE id IN (SELECT message_id FROM h)"
    )
    args = (
        message_id,
        e.id,
        status.value,
        e.time,
        json.dumps(detail),
        e.tenantid,
        MESSAGE_STATUS_RANK[status],
        whatsapp_id,
        *cols.values(),
    )
    return sql, args


def _sent(e: ev.MessageSent) -> Statement:
    d = e.data
    detail = {"whatsapp_id": d.whatsapp_id}
    return _record(e, d.message_id, MessageStatus.SENT, detail, d.whatsapp_id)


def _receipt_status(e: ev.MessageDelivered | ev.MessageRead) -> MessageStatus:
    return MessageStatus.DELIVERED if isinstance(e, ev.MessageDelivered) else MessageStatus.READ


def _receipt(e: ev.MessageDelivered | ev.MessageRead) -> Statement | None:
    """None when the receipt names only the WhatsApp id: `_receipt_by_whatsapp_id` looks it up."""
    if e.data.message_id is None:
        return None
    return _record(e, e.data.message_id, _receipt_status(e), {})


async def _receipt_by_whatsapp_id(conn: Conn, e: ev.MessageDelivered | ev.MessageRead) -> None:
    # Receipts are for what this session sent: an inbound message may carry the same WhatsApp id.
    message_id = await conn.fetchval(
        "SELECT id FROM messages WHERE whatsapp_id = $1 AND tenant_id = $2 AND session_id = $3"
        " AND direction = 'outbound'",
        e.data.whatsapp_id,
        e.tenantid,
        e.sessionid,
    )
    if message_id is not None:
        sql, args = _record(e, message_id, _receipt_status(e), {})
        await conn.execute(sql, *args)


def _failed(e: ev.MessageFailed) -> Statement:
    d = e.data
    detail = {"reason": d.reason.value, "detail": d.detail, "attempts": d.attempts}
    return _record(
        e,
        d.message_id,
        MessageStatus.FAILED,
        detail,
        failure_reason=d.reason.value,
        failure_detail=d.detail,
    )


def _rate_limited(e: ev.MessageRateLimited) -> Statement:
    d = e.data
    detail = {"retry_after": d.retry_after, "window": d.window}
    return _record(e, d.message_id, MessageStatus.RATE_LIMITED, detail)


async def _received(conn: Conn, e: ev.MessageReceived) -> None:
    d = e.data
    inserted = await conn.fetchval(
        "INSERT INTO messages (id, tenant_id, session_id, direction, chat, sender, type, content, status,"
        " whatsapp_id, published_at, created_at, sender_lid, push_name, participant, participant_lid)"
        " SELECT $1, $2, $3, 'inbound', $4, $5, $6, $7, 'received', $8, now(), $9, $10, $11, $12, $13"
        " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $3 AND tenant_id = $2)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        d.message_id,
        e.tenantid,
        e.sessionid,
        d.chat,
        d.sender,
        d.content.type,
        d.content.model_dump_json(),
        d.whatsapp_id,
        d.sent_at,
        d.sender_lid,
        d.push_name,
        d.participant,
        d.participant_lid,
    )
    if inserted is not None:
        await _history(conn, e, d.message_id, MessageStatus.RECEIVED, {})
        if d.chat != chats.BROADCAST and d.content.type != "reaction":
            content = d.content.model_dump(mode="json")
            name = None if d.is_group else d.push_name
            await conn.execute(
                chats.UPSERT,
                *_chat_row(
                    e, d.chat, name, d.message_id, "inbound", d.content.type, content, d.sent_at, True
                ),
            )


async def _history_imported(conn: Conn, e: ev.HistoryImported) -> None:
    """Messages of the history sync, as imported: the chat lists them, nothing counts as unread, and a
    message already stored (received live, or sent through ZapHub) is kept as it is."""
    d = e.data
    ms = d.messages
    if not ms:
        return
    rows = await conn.fetch(
        "INSERT INTO messages (id, tenant_id, session_id, direction, chat, sender, type, content, status,"
        " whatsapp_id, published_at, created_at, sender_lid, push_name, participant, participant_lid,"
        " imported)"
        " SELECT i.id, $1, $2, i.direction, $3, i.sender, i.type, i.content, i.status, i.whatsapp_id, now(),"
        " i.at, i.sender_lid, i.push_name, i.participant, i.participant_lid, true"
        " FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::text[], $10::text[],"
        " $11::timestamptz[], $12::text[], $13::text[], $14::text[], $15::text[])"
        " AS i(id, direction, sender, type, content, status, whatsapp_id, at, sender_lid, push_name,"
        " participant, participant_lid)"
        " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND tenant_id = $1)"
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.whatsapp_id = i.whatsapp_id AND m.session_id = $2)"
        " ON CONFLICT (id) DO NOTHING RETURNING id, status, created_at",
        e.tenantid,
        e.sessionid,
        d.chat,
        [m.message_id for m in ms],
        [m.direction for m in ms],
        [m.sender for m in ms],
        [m.content.type for m in ms],
        [m.content.model_dump_json() for m in ms],
        [MessageStatus.RECEIVED.value if m.direction == "inbound" else MessageStatus.SENT.value for m in ms],
        [m.whatsapp_id for m in ms],
        [m.sent_at for m in ms],
        [m.sender_lid for m in ms],
        [m.push_name for m in ms],
        [m.participant for m in ms],
        [m.participant_lid for m in ms],
    )
    if not rows:
        return
    await conn.execute(
        "INSERT INTO message_history (message_id, status, at, detail)"
        " SELECT unnest($1::uuid[]), unnest($2::text[]), unnest($3::timestamptz[]), $4::jsonb",
        [r["id"] for r in rows],
        [r["status"] for r in rows],
        [r["created_at"] for r in rows],
        json.dumps({"imported": True, "sync_type": d.sync_type}),
    )
    last = max((m for m in ms if m.content.type != "reaction"), key=lambda m: m.sent_at, default=None)
    if last is not None and d.chat != chats.BROADCAST:
        content = last.content.model_dump(mode="json")
        row = _chat_row(
            e,
            d.chat,
            d.name,
            last.message_id,
            last.direction,
            last.content.type,
            content,
            last.sent_at,
            False,
        )
        await conn.execute(chats.UPSERT_IMPORTED, *row)


def _chat_row(
    e: ev.EventBase,
    chat: str,
    name: str | None,
    message_id: Any,
    direction: str,
    kind: str,
    content: dict[str, Any],
    at: Any,
    unread: bool,
) -> tuple[Any, ...]:
    preview = chats.preview(content)
    return (
        e.tenantid,
        e.sessionid,
        chat,
        name,
        chats.is_group(chat),
        message_id,
        direction,
        kind,
        preview,
        at,
        unread,
    )


async def _chats_of_sends(conn: Conn, sent: list[ev.MessageSent]) -> None:
    """Move the chats of the messages handed to WhatsApp (their chat and content are in `messages`)."""
    if not sent:
        return
    rows = await conn.fetch(
        "SELECT id, chat, type, content FROM messages WHERE id = ANY($1::uuid[]) AND direction = 'outbound'",
        [e.data.message_id for e in sent],
    )
    by_id = {r["id"]: r for r in rows}
    batch = []
    for e in sent:
        row = by_id.get(e.data.message_id)
        if row is None or row["chat"] == chats.BROADCAST or row["type"] == "reaction":
            continue
        content = json.loads(row["content"])
        batch.append(
            _chat_row(e, row["chat"], None, row["id"], "outbound", row["type"], content, e.time, False)
        )
    if batch:
        await conn.executemany(chats.UPSERT, batch)


async def _media_stored(conn: Conn, e: ev.MessageMediaStored) -> None:
    await conn.execute(
        "UPDATE messages SET media = $3, media_stored_at = $4, updated_at = now()"
        " WHERE id = $1 AND tenant_id = $2",
        e.data.message_id,
        e.tenantid,
        e.data.media.model_dump_json(),
        e.time,
    )


async def _target(conn: Conn, e: ev.MessageEdited | ev.MessageRevoked) -> Any:
    """The message an edit or revoke is about: the session's own (outbound) when `from_me`, else the
    contact's (inbound)."""
    return await conn.fetchval(
        "SELECT id FROM messages WHERE whatsapp_id = $1 AND tenant_id = $2 AND session_id = $3"
        " AND direction = $4",
        e.data.whatsapp_id,
        e.tenantid,
        e.sessionid,
        "outbound" if e.data.from_me else "inbound",
    )


async def _edited(conn: Conn, e: ev.MessageEdited) -> None:
    d = e.data
    target = await _target(conn, e)
    field, value = ("text", d.text) if d.text is not None else ("caption", d.caption)
    if target is None or not await _history(conn, e, target, MessageStatus.EDITED, {field: value}):
        return
    # Edits may be projected out of order: the content is the latest edit's.
    await conn.execute(
        "UPDATE messages SET content = jsonb_set(content, $2, to_jsonb($3::text)),"
        " edited_at = $4, updated_at = now() WHERE id = $1 AND (edited_at IS NULL OR edited_at <= $4)",
        target,
        [field],
        value,
        d.edited_at,
    )


async def _revoked(conn: Conn, e: ev.MessageRevoked) -> None:
    target = await _target(conn, e)
    if target is not None and await _history(conn, e, target, MessageStatus.REVOKED, {}):
        await conn.execute(
            "UPDATE messages SET revoked_at = $2, updated_at = now() WHERE id = $1", target, e.data.revoked_at
        )


async def _poll_vote(conn: Conn, e: ev.PollVote) -> None:
    """The voter's current selection on the session's poll (a later vote replaces an earlier one);
    `GET /messages/{id}` counts them."""
    d = e.data
    await conn.execute(
        "UPDATE messages SET content = jsonb_set(content, '{votes}',"
        " COALESCE(content->'votes', '{}'::jsonb) || jsonb_build_object($4::text, $5::jsonb)),"
        " updated_at = now()"
        " WHERE whatsapp_id = $1 AND tenant_id = $2 AND session_id = $3 AND type = 'poll'",
        d.poll_id,
        e.tenantid,
        e.sessionid,
        d.voter,
        json.dumps(d.options),
    )


async def _ignore(conn: Conn, e: ev.EventBase) -> None:
    return None


async def _group_joined(conn: Conn, e: ev.GroupJoined) -> None:
    group = e.data.group
    await conn.execute(chats.NAME_GROUP, e.tenantid, e.sessionid, group.jid, group.subject, e.time)


async def _group_updated(conn: Conn, e: ev.GroupUpdated) -> None:
    if e.data.subject is not None:
        await conn.execute(chats.NAME_GROUP, e.tenantid, e.sessionid, e.data.group, e.data.subject, e.time)


# Status moves of outbound messages: statements, so a batch runs all of one shape in one round trip.
STATUS_MOVES: dict[type[ev.EventBase], StatusMove] = {
    ev.MessageSent: _sent,
    ev.MessageDelivered: _receipt,
    ev.MessageRead: _receipt,
    ev.MessageFailed: _failed,
    ev.MessageRateLimited: _rate_limited,
}
# Everything else, and the status moves a statement cannot express, one event at a time.
PROJECTIONS: dict[type[ev.EventBase], Projection] = {
    ev.SessionQr: _qr,
    ev.SessionPairCode: _ignore,
    ev.SessionConnected: _connected,
    ev.SessionDisconnected: _disconnected,
    ev.SessionLoggedOut: _logged_out,
    ev.SessionFailed: _failed_session,
    ev.MessageDelivered: _receipt_by_whatsapp_id,
    ev.MessageRead: _receipt_by_whatsapp_id,
    ev.MessageReceived: _received,
    ev.MessageMediaStored: _media_stored,
    ev.HistoryImported: _history_imported,
    ev.MessageEdited: _edited,
    ev.MessageRevoked: _revoked,
    # Fanned out to webhooks and SSE; nothing to keep.
    ev.MessageReaction: _ignore,
    ev.PresenceUpdated: _ignore,
    ev.ChatPresence: _ignore,
    ev.PollVote: _poll_vote,
    # Group reads ask the owning host (the account's view, always current); the events go to
    # webhooks and SSE. Only the subject is kept, as the group chat's name in the chat list.
    ev.GroupJoined: _group_joined,
    ev.GroupLeft: _ignore,
    ev.GroupUpdated: _group_updated,
    ev.GroupParticipants: _ignore,
    ev.GroupJoinRequest: _ignore,
}
assert set(PROJECTIONS) | set(STATUS_MOVES) == set(ev.EVENT_CLASSES), "every event type needs a projection"


async def project(conn: Conn, events: list[ev.EventBase]) -> None:
    """Project events in one transaction: status moves first, grouped by statement (their order does
    not matter: a move only ever raises a message's status, and the WhatsApp id is kept whatever
    comes first), then the rest in event order, so a receipt looked up by WhatsApp id finds the
    `message.sent` of the same batch."""
    moves: dict[str, list[tuple[Any, ...]]] = {}
    rest: list[ev.EventBase] = []
    for event in events:
        move = STATUS_MOVES.get(type(event))
        statement = move(event) if move is not None else None
        if statement is None:
            rest.append(event)
        else:
            moves.setdefault(statement[0], []).append(statement[1])
    for sql, rows in moves.items():
        await conn.executemany(sql, rows)
    await _chats_of_sends(conn, [e for e in events if isinstance(e, ev.MessageSent)])
    for event in rest:
        await PROJECTIONS[type(event)](conn, event)


class Projector:
    def __init__(self, bus: Bus, pool: asyncpg.Pool) -> None:
        self._bus = bus
        self._pool = pool

    async def handle_batch(self, msgs: list[Msg]) -> None:
        """Project a fetched batch in one transaction, status moves pipelined (`project`); should that
        fail, each event again on its own, so one that cannot land holds back only itself."""
        parsed: list[tuple[Msg, ev.EventBase]] = []
        for msg in msgs:
            event = await self._parse(msg)
            if event is not None:
                parsed.append((msg, event))
        if not parsed:
            return
        try:
            with ExitStack() as spans:
                for msg, _ in parsed:
                    spans.enter_context(self._span(msg))
                async with self._pool.acquire() as conn, conn.transaction():
                    await project(conn, [event for _, event in parsed])
        except (asyncpg.PostgresError, OSError):
            log.info("batch projection failed; projecting one by one", exc_info=True)
            for msg, event in parsed:
                with self._span(msg):
                    await self._project(msg, event)
            return
        for msg, _ in parsed:
            await msg.ack()

    @staticmethod
    def _span(msg: Msg) -> AbstractContextManager[trace.Span]:
        return consumer_span(tracer, msg.subject, msg.headers, {"zaphub.consumer": "projector"})

    async def _parse(self, msg: Msg) -> ev.EventBase | None:
        """The event, or None once a malformed one has been dead-lettered and acked."""
        return await decode_or_dead_letter(self._bus, msg, lambda m: ev.parse_event(m.data), "projector")

    async def _project(self, msg: Msg, event: ev.EventBase) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await project(conn, [event])
        except (asyncpg.PostgresError, OSError):
            log.warning("projection failed; will retry", exc_info=True)
            await msg.nak(delay=1.0)
            return
        await msg.ack()
