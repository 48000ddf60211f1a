"""The order gate on a real KV bucket: each session's cursor (`cursor.<session>`), which seq is next,
how a waiting head holds back the seqs behind it, and replicas sharing one cursor."""

import asyncio
import time
from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from zaphub_contracts import streams
from zaphub_dispatcher.order import Cursor, OrderGate
from zaphub_runtime.bus import Bus


@pytest.fixture
async def bucket(nats_url: str) -> AsyncIterator[KeyValue]:
    bus = await Bus.connect(nats_url, name="order-test", source="/test")
    yield await bus.kv(streams.DISPATCH_BUCKET)
    await bus.close()


@pytest.fixture
def session() -> UUID:
    return uuid4()


async def stored(bucket: KeyValue, session: UUID) -> Cursor:
    """The cursor as the bucket holds it, whatever any replica has cached."""
    entry = await bucket.get(f"cursor.{session}")
    return Cursor.model_validate_json(entry.value or b"{}")


async def test_a_session_without_a_cursor_expects_seq_1(bucket: KeyValue, session: UUID) -> None:
    """No key yet: nothing is done and nothing waits, so seq 1 is next; reading writes nothing."""
    cursor = await OrderGate(bucket).read(session)
    assert (cursor.done, cursor.blocked_until, cursor.rate_limited) == (0, 0.0, False)
    with pytest.raises(KeyNotFoundError):
        await bucket.get(f"cursor.{session}")


async def test_complete_moves_the_cursor_in_the_bucket_and_never_back(
    bucket: KeyValue, session: UUID
) -> None:
    """Completing a seq stores it as done; completing an earlier one afterwards changes nothing."""
    gate = OrderGate(bucket)
    await gate.complete(session, 1)
    assert (await stored(bucket, session)).done == 1
    await gate.complete(session, 3)  # a run of 2 and 3, completed by its last
    await gate.complete(session, 2)
    assert (await stored(bucket, session)).done == 3
    assert (await gate.read(session)).done == 3


async def test_only_the_head_can_block_and_completing_it_clears_the_block(
    bucket: KeyValue, session: UUID
) -> None:
    """The next seq waiting (rate limit or backoff) is stored with until when and why; a seq behind
    a gap cannot block, a shorter wait does not shorten it, and completing the head clears it."""
    gate = OrderGate(bucket)
    await gate.complete(session, 4)
    before = time.time()
    await gate.block(session, 5, 30.0, rate_limited=True, window="day")
    cursor = await stored(bucket, session)
    assert cursor.done == 4 and cursor.rate_limited and cursor.window == "day"
    assert before + 30.0 <= cursor.blocked_until <= time.time() + 30.0

    await gate.block(session, 5, 1.0)  # shorter
    await gate.block(session, 7, 60.0)  # not the head: 6 is missing
    assert await stored(bucket, session) == cursor

    await gate.complete(session, 5)
    assert await stored(bucket, session) == Cursor(done=5)


async def test_replicas_share_one_cursor_with_compare_and_set(bucket: KeyValue, session: UUID) -> None:
    """A replica's cached cursor may lag until read fresh, yet its writes land on the newest value:
    a write over a stale revision is re-read and applied, and racing completions keep the highest."""
    mine, theirs = OrderGate(bucket), OrderGate(bucket)
    await mine.complete(session, 1)
    await theirs.complete(session, 2)
    assert (await mine.read(session)).done == 1  # cached
    assert (await mine.read(session, fresh=True)).done == 2

    await theirs.complete(session, 3)
    assert (await mine.read(session, fresh=True)).done == 3
    await theirs.block(session, 4, 1.0)  # a newer revision than the one `mine` knows
    before = time.time()
    await mine.block(session, 4, 5.0)  # a compare-and-set conflict: re-read, still the head, applied
    cursor = await stored(bucket, session)
    assert cursor.done == 3 and cursor.blocked_until >= before + 5.0

    await asyncio.gather(mine.complete(session, 5), theirs.complete(session, 4))
    assert (await stored(bucket, session)).done == 5
    mine.forget(session)
    assert (await mine.read(session)).done == 5
