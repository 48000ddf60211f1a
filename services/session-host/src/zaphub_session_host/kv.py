"""KV helpers nats-py's KeyValue lacks: writes with a per-key TTL and compare-and-set, and a live
local mirror of a bucket kept current by a watcher."""

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from nats.js import JetStreamContext
from nats.js.errors import APIError, NotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ValidationError

from zaphub_runtime.kv_watch import BucketWatch

log = logging.getLogger(__name__)

EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
KV_OPERATION = "KV-Operation"
MARKER_REASON = "Nats-Marker-Reason"  # the server's tombstone of a key whose TTL ran out
WRONG_LAST_SEQUENCE = (10071, 10164)

M = TypeVar("M", bound=BaseModel)


class WrongRevision(Exception):
    """The key moved on since the revision we hold: someone else wrote it, or it expired."""


def _subject(bucket: str, key: str) -> str:
    return f"$KV.{bucket}.{key}"  # the KV protocol's own layout, not a ZapHub subject


async def put_ttl(
    js: JetStreamContext, bucket: str, key: str, value: bytes, ttl: float, last: int | None = None
) -> int:
    """Write `key` with a per-message TTL; with `last`, only if its current revision is `last` (0: absent)."""
    headers = {EXPECTED_LAST_SUBJECT_SEQ: str(last)} if last is not None else None
    try:
        ack = await js.publish(_subject(bucket, key), value, headers=headers, msg_ttl=ttl)
    except APIError as err:
        if err.err_code in WRONG_LAST_SEQUENCE:
            raise WrongRevision(key) from err
        raise
    return ack.seq


async def create_ttl(js: JetStreamContext, bucket: str, key: str, value: bytes, ttl: float) -> int | None:
    """Create `key` unless it holds a live value; its revision, or None when someone else holds it.

    A deleted or expired key leaves a tombstone behind for a while; taking over a tombstone is a
    compare-and-set against its revision, so two hosts racing for it still have one winner.
    """
    try:
        return await put_ttl(js, bucket, key, value, ttl, last=0)
    except WrongRevision:
        pass
    try:
        current = await js.get_last_msg(f"KV_{bucket}", _subject(bucket, key))
    except NotFoundError:
        current = None
    if current is None:
        last = 0  # the tombstone itself expired in between
    else:
        headers = current.headers or {}
        if headers.get(KV_OPERATION) not in ("DEL", "PURGE") and MARKER_REASON not in headers:
            return None
        last = current.seq or 0
    try:
        return await put_ttl(js, bucket, key, value, ttl, last=last)
    except WrongRevision:
        return None


class KvMirror(Generic[M]):
    """A bucket's live keys decoded as `model`, kept current in memory by one watch."""

    def __init__(
        self,
        kv: KeyValue,
        model: type[M],
        on_delete: Callable[[str], None] | None = None,
    ) -> None:
        self.kv = kv
        self.model = model
        self.entries: dict[str, tuple[M, int]] = {}  # key -> (value, revision)
        self._on_delete = on_delete
        self._watch = BucketWatch(kv, self._apply, f"kv-mirror-{model.__name__}")

    async def start(self, timeout: float = 10.0) -> None:
        await self._watch.start(timeout)

    def _apply(self, key: str, value: bytes | None, revision: int) -> None:
        if value is None:
            if self.entries.pop(key, None) is not None and self._on_delete:
                self._on_delete(key)
            return
        try:
            decoded = self.model.model_validate_json(value)
        except ValidationError:
            log.warning("unreadable KV value", extra={"fields": {"key": key}})
            return
        self.entries[key] = (decoded, revision)

    async def stop(self) -> None:
        await self._watch.stop()
