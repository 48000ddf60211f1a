"""Per-session send order across dispatcher replicas.

Every send command carries `seq`, its place in the session's order of acceptance. KV key
`cursor.<session_id>` holds the last seq whose outcome is final (sent or failed) and, while the head
message waits (rate limit or backoff), until when. A message goes out only when it is next after the
cursor; later ones wait, so a waiting message holds back only its own session.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel


class Cursor(BaseModel):
    done: int = 0  # last seq with a final outcome
    blocked_until: float = 0.0  # wall-clock time the head message waits for, 0 when not waiting
    rate_limited: bool = False  # the head waits for the tenant's rate limit (not a retry backoff)
    window: str | None = None  # the window that denied it


CursorChange = Callable[[Cursor], Cursor | None]


@dataclass
class _Known:
    cursor: Cursor
    revision: int | None  # None: the key does not exist yet


class OrderGate:
    """Reads and advances cursors with compare-and-set; caches what this replica last wrote."""

    def __init__(self, bucket: KeyValue) -> None:
        self._bucket = bucket
        self._known: dict[UUID, _Known] = {}

    @staticmethod
    def _key(session_id: UUID) -> str:
        return f"cursor.{session_id}"

    async def read(self, session_id: UUID, fresh: bool = False) -> Cursor:
        known = self._known.get(session_id)
        if known is None or fresh:
            known = await self._load(session_id)
        return known.cursor

    async def _load(self, session_id: UUID) -> _Known:
        try:
            entry = await self._bucket.get(self._key(session_id))
        except KeyNotFoundError:
            known = _Known(Cursor(), None)
        else:
            cursor = Cursor.model_validate_json(entry.value) if entry.value else Cursor()
            known = _Known(cursor, entry.revision)
        self._known[session_id] = known
        return known

    async def _write(self, session_id: UUID, change: CursorChange) -> Cursor:
        for _ in range(20):
            known = self._known.get(session_id) or await self._load(session_id)
            updated = change(known.cursor)
            if updated is None:
                return known.cursor
            value = updated.model_dump_json().encode()
            try:
                if known.revision is None:
                    revision = await self._bucket.create(self._key(session_id), value)
                else:
                    revision = await self._bucket.update(self._key(session_id), value, last=known.revision)
            except Exception as exc:
                if not _is_cas_conflict(exc):
                    raise
                await self._load(session_id)
                continue
            self._known[session_id] = _Known(updated, revision)
            return updated
        raise RuntimeError(f"cursor of session {session_id} is too contended")

    async def complete(self, session_id: UUID, seq: int) -> Cursor:
        """Record that `seq` has its final outcome."""

        def change(cursor: Cursor) -> Cursor | None:
            if cursor.done >= seq:
                return None
            return Cursor(done=seq, blocked_until=0.0)

        return await self._write(session_id, change)

    async def skip(self, session_id: UUID, seq: int) -> bool:
        """Move the cursor past `seq` only when it is next (a malformed command at its turn): True when
        the cursor is past it now. An earlier message still open keeps its place."""

        def change(cursor: Cursor) -> Cursor | None:
            if cursor.done != seq - 1:
                return None
            return Cursor(done=seq, blocked_until=0.0)

        return (await self._write(session_id, change)).done >= seq

    async def block(
        self,
        session_id: UUID,
        seq: int,
        seconds: float,
        rate_limited: bool = False,
        window: str | None = None,
    ) -> None:
        """The head message `seq` waits; later messages need not ask again before then."""
        until = time.time() + seconds

        def change(cursor: Cursor) -> Cursor | None:
            if cursor.done != seq - 1 or cursor.blocked_until >= until:
                return None
            return Cursor(done=cursor.done, blocked_until=until, rate_limited=rate_limited, window=window)

        await self._write(session_id, change)

    def forget(self, session_id: UUID) -> None:
        self._known.pop(session_id, None)


def _is_cas_conflict(exc: Exception) -> bool:
    if isinstance(exc, KeyWrongLastSequenceError):
        return True
    # create() on an existing key raises a BadRequest "wrong last sequence" from the server.
    return "wrong last sequence" in str(exc).lower()
