"""KV helpers nats-py's KeyValue lacks: writes with a per-key TTL and compare-and-set."""

import logging
from typing import TypeVar

from nats.js.errors import APIError, NotFoundError
from pydantic import BaseModel

from zaphub_runtime.bus import Bus

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


async def put_ttl(bus: Bus, bucket: str, key: str, value: bytes, ttl: float, last: int | None = None) -> int:
    """Write `key` with a per-message TTL; with `last`, only if its current revision is `last` (0: absent)."""
    headers = {EXPECTED_LAST_SUBJECT_SEQ: str(last)} if last is not None else None
    try:
        ack = await bus.publish_raw(_subject(bucket, key), value, headers=headers, msg_ttl=ttl)
    except APIError as err:
        if err.err_code in WRONG_LAST_SEQUENCE:
            raise WrongRevision(key) from err
        raise
    return ack.seq


async def create_ttl(bus: Bus, bucket: str, key: str, value: bytes, ttl: float) -> int | None:
    """Create `key` unless it holds a live value; its revision, or None when someone else holds it.

    A deleted or expired key leaves a tombstone behind for a while; taking over a tombstone is a
    compare-and-set against its revision, so two hosts racing for it still have one winner.
    """
    try:
        return await put_ttl(bus, bucket, key, value, ttl, last=0)
    except WrongRevision:
        pass
    try:
        current = await bus.js.get_last_msg(f"KV_{bucket}", _subject(bucket, key))
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
        return await put_ttl(bus, bucket, key, value, ttl, last=last)
    except WrongRevision:
        return None
