"""Chats of a session and their history: rows the projector keeps (`upsert_*`), read by keyset."""

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from zaphub_api.domain_errors import InvalidField
from zaphub_api.store.messages import MESSAGE_COLUMNS

BROADCAST = "status@broadcast"  # WhatsApp statuses: not a chat
PREVIEW_LENGTH = 100
CHAT_COLUMNS = (
    "chat, name, is_group, last_message_id, last_direction, last_type, last_preview, last_at,"
    " unread_count, updated_at"
)


def preview(content: dict[str, Any]) -> str:
    """What a chat list shows of a message: its text, caption or a label of its type."""
    kind = content.get("type", "")
    text = content.get("text") or content.get("caption") or content.get("name") or content.get("display_name")
    if kind == "reaction":
        text = content.get("emoji") or ""
    if not text and kind != "text":
        text = f"[{kind}]"
    return str(text)[:PREVIEW_LENGTH]


def is_group(chat: str) -> bool:
    return chat.endswith("@g.us")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a keyset page ends: the sort time and the tie-breaker of its last row."""

    at: datetime
    key: str

    def encode(self) -> str:
        return base64.urlsafe_b64encode(json.dumps([self.at.isoformat(), self.key]).encode()).decode()

    @classmethod
    def decode(cls, value: str | None) -> "Cursor | None":
        if not value:
            return None
        try:
            at, key = json.loads(base64.urlsafe_b64decode(value.encode()))
            return cls(datetime.fromisoformat(at), str(key))
        except (ValueError, TypeError) as exc:
            raise InvalidField("after", "not a cursor this API handed out") from exc


# The projector's statement: one message moves its chat; `$11` says whether it counts as unread.
UPSERT = (
    "INSERT INTO chats (tenant_id, session_id, chat, name, is_group, last_message_id, last_direction,"
    " last_type, last_preview, last_at, unread_count, updated_at)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, CASE WHEN $11 THEN 1 ELSE 0 END, now()"
    " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND tenant_id = $1)"
    " ON CONFLICT (session_id, chat) DO UPDATE SET"
    " name = COALESCE(EXCLUDED.name, chats.name),"
    " last_message_id = CASE WHEN EXCLUDED.last_at >= chats.last_at THEN EXCLUDED.last_message_id"
    "  ELSE chats.last_message_id END,"
    " last_direction = CASE WHEN EXCLUDED.last_at >= chats.last_at THEN EXCLUDED.last_direction"
    "  ELSE chats.last_direction END,"
    " last_type = CASE WHEN EXCLUDED.last_at >= chats.last_at THEN EXCLUDED.last_type"
    "  ELSE chats.last_type END,"
    " last_preview = CASE WHEN EXCLUDED.last_at >= chats.last_at THEN EXCLUDED.last_preview"
    "  ELSE chats.last_preview END,"
    " last_at = GREATEST(chats.last_at, EXCLUDED.last_at),"
    # Receiving counts one more unread; sending from the account means its user has read the chat.
    " unread_count = CASE WHEN $11 THEN chats.unread_count + 1 ELSE 0 END,"
    " updated_at = now()"
)
# The same for a message of the history sync: it never changes what is unread.
UPSERT_IMPORTED = UPSERT.replace(
    " unread_count = CASE WHEN $11 THEN chats.unread_count + 1 ELSE 0 END,",
    " unread_count = chats.unread_count,",
)
assert UPSERT_IMPORTED != UPSERT
# A group's subject, from group.joined or group.updated, as its chat's name (messages leave it alone:
# their push name is the sender's). A group just joined is listed from then, with no message yet.
NAME_GROUP = (
    "INSERT INTO chats (tenant_id, session_id, chat, name, is_group, last_at, unread_count, updated_at)"
    " SELECT $1, $2, $3, $4, true, $5, 0, now()"
    " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = $2 AND tenant_id = $1)"
    " ON CONFLICT (session_id, chat) DO UPDATE SET name = EXCLUDED.name, updated_at = now()"
)


class ChatStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def recent(
        self, tenant_id: UUID, session_id: UUID, limit: int, after: Cursor | None
    ) -> list[asyncpg.Record]:
        """The session's chats, newest activity first, after the cursor."""
        rows = await self._pool.fetch(
            f"SELECT {CHAT_COLUMNS} FROM chats WHERE tenant_id = $1 AND session_id = $2"
            " AND ($4::timestamptz IS NULL OR (last_at, chat) < ($4, $5))"
            " ORDER BY last_at DESC, chat DESC LIMIT $3",
            tenant_id,
            session_id,
            limit,
            after.at if after else None,
            after.key if after else "",
        )
        return list(rows)

    async def history(
        self, tenant_id: UUID, session_id: UUID, chat: str, limit: int, after: Cursor | None
    ) -> list[asyncpg.Record]:
        rows = await self._pool.fetch(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE tenant_id = $1 AND session_id = $2 AND chat = $3"
            " AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6::uuid))"
            " ORDER BY created_at DESC, id DESC LIMIT $4",
            tenant_id,
            session_id,
            chat,
            limit,
            after.at if after else None,
            after.key if after else None,
        )
        return list(rows)

    async def mark_read(self, tenant_id: UUID, session_id: UUID, chat: str) -> bool:
        """Reset the chat's unread count; False when the session has no such chat."""
        done = await self._pool.fetchval(
            "UPDATE chats SET unread_count = 0, updated_at = now()"
            " WHERE tenant_id = $1 AND session_id = $2 AND chat = $3 RETURNING 1",
            tenant_id,
            session_id,
            chat,
        )
        return done is not None
